//! The reconciler's passes on MongoDB, each idempotent, so instances racing on them agree:
//! finish deletes, settle abandoned creates, finish abandoned renames, sweep the documents of
//! deleted tenants, release reservations nothing uses, remove orphans, expire old records.
//! Teams' passes (settle interrupted accepts, sweep accounts and memberships) are in
//! `invitations.rs` and `teams_upkeep.rs`.
//! [`super::maintenance`] runs them in that order.

use futures::TryStreamExt;
use mongodb::bson::{doc, DateTime as BsonDateTime, Document};
use mongodb::Collection;

use super::claims::{reservation_keys, Outcome, DELETED_PREFIX};
use super::codec::bson_time;
use super::tenant::owned_collections;
use super::{MongoStore, STATE_ACTIVE, STATE_CREATING, STATE_DELETING};
use crate::storage::{ReconcileReport, StoreError, MAX_LOGIN_WINDOW_SECONDS};

impl MongoStore {
    /// Every document of `collection` matching `filter`.
    pub(super) async fn all(
        &self,
        what: &str,
        collection: &Collection<Document>,
        filter: Document,
    ) -> Result<Vec<Document>, StoreError> {
        self.run(what, async {
            collection.find(filter).await?.try_collect().await
        })
        .await
    }

    /// Deletes are finished whatever their age: the organization is already invisible.
    pub(super) async fn finish_deletes(
        &self,
        report: &mut ReconcileReport,
    ) -> Result<(), StoreError> {
        let deleting = self
            .all("find", &self.orgs(), doc! { "state": STATE_DELETING })
            .await?;
        for org in deleting {
            self.purge(&org).await?;
            report.repaired.push(format!(
                "finished delete of {}",
                org.get_str("_id").unwrap_or("?")
            ));
        }

        Ok(())
    }

    /// Creates abandoned mid-way are rolled forward if committed, undone otherwise.
    pub(super) async fn settle_creates(
        &self,
        cutoff: BsonDateTime,
        report: &mut ReconcileReport,
    ) -> Result<(), StoreError> {
        let creating = self
            .all(
                "find",
                &self.orgs(),
                doc! { "state": STATE_CREATING, "since": { "$lt": cutoff } },
            )
            .await?;
        for org in creating {
            let id = org.get_str("_id").unwrap_or_default().to_owned();
            match self.decide(&id, Outcome::Abort).await? {
                Outcome::Commit => {
                    // The creator committed (and maybe crashed before activating): roll forward.
                    self.activate(&id).await?;
                    report.repaired.push(format!("finished create of {id}"));
                }
                Outcome::Abort => {
                    let still_creating = self
                        .run(
                            "find organization",
                            self.orgs()
                                .find_one(doc! { "_id": &id, "state": STATE_CREATING }),
                        )
                        .await?
                        .is_some();
                    if still_creating {
                        self.undo_create(&org).await?;
                        report.repaired.push(format!("undid create of {id}"));
                    } else {
                        // Activated before the abort was recorded (its commit record was
                        // already released): the abort record is void.
                        self.release(&format!("outcome:{id}"), &id).await?;
                    }
                }
            }
        }

        Ok(())
    }

    /// Renames abandoned after being marked are rolled forward.
    pub(super) async fn finish_renames(
        &self,
        cutoff: BsonDateTime,
        report: &mut ReconcileReport,
    ) -> Result<(), StoreError> {
        let renaming = self
            .all(
                "find",
                &self.orgs(),
                doc! { "state": STATE_ACTIVE, "pending.at": { "$lt": cutoff } },
            )
            .await?;
        for org in renaming {
            self.finish_rename(&org).await?;
            report.repaired.push(format!(
                "finished rename of {}",
                org.get_str("_id").unwrap_or("?")
            ));
        }

        Ok(())
    }

    /// Reservations nothing refers to (a crash between claim and use) are released.
    pub(super) async fn release_unused_reservations(
        &self,
        orgs: &[Document],
        cutoff: BsonDateTime,
        report: &mut ReconcileReport,
    ) -> Result<(), StoreError> {
        let stale = self
            .all(
                "find",
                &self.reservations(),
                doc! { "created_at": { "$lt": cutoff } },
            )
            .await?;
        for res in stale {
            let key = res.get_str("_id").unwrap_or_default();
            if key.starts_with(DELETED_PREFIX) {
                continue; // `sweep_deleted_tenants` owns tombstones
            }
            let owner = res.get_str("organization_id").unwrap_or_default();
            let used = orgs.iter().any(|o| {
                o.get_str("_id").ok() == Some(owner) && reservation_keys(o).iter().any(|k| k == key)
            });
            if !used {
                self.release(key, owner).await?;
                report.repaired.push(format!("released reservation {key}"));
            }
        }

        Ok(())
    }

    /// Tenant collections nothing owns or claims (accounts and memberships nothing owns are
    /// `sweep_teams`'s).
    pub(super) async fn remove_orphans(
        &self,
        orgs: &[Document],
        report: &mut ReconcileReport,
    ) -> Result<(), StoreError> {
        let claimed: Vec<String> = self
            .run("find", async {
                self.reservations()
                    .find(doc! { "_id": { "$regex": "^slug:" } })
                    .await?
                    .try_collect::<Vec<_>>()
                    .await
            })
            .await?
            .iter()
            .filter_map(|r| {
                r.get_str("_id")
                    .ok()
                    .map(|k| format!("org_{}", &k["slug:".len()..]))
            })
            .collect();
        for collection in self.tenant_collections().await? {
            let owned = orgs
                .iter()
                .any(|o| owned_collections(o).contains(&collection));
            if !owned && !claimed.contains(&collection) {
                self.drop_collection(&collection).await?;
                report
                    .repaired
                    .push(format!("dropped orphan collection {collection}"));
            }
        }
        Ok(())
    }

    /// Documents of deleted organizations that an insert racing the delete landed after its
    /// purge: once a tombstone is older than the grace period (no insert runs that long), its
    /// tenant's documents are deleted once more and the tombstone goes. Costs one indexed
    /// delete per recent deletion, however many documents the other tenants hold.
    pub(super) async fn sweep_deleted_tenants(
        &self,
        cutoff: BsonDateTime,
        report: &mut ReconcileReport,
    ) -> Result<(), StoreError> {
        let tombstones = self
            .all(
                "find",
                &self.reservations(),
                doc! { "_id": { "$regex": format!("^{DELETED_PREFIX}") }, "created_at": { "$lt": cutoff } },
            )
            .await?;
        for tombstone in tombstones {
            let key = tombstone.get_str("_id").unwrap_or_default();
            let tenant = tombstone.get_str("tenant").unwrap_or_default();
            let swept = self
                .run(
                    "sweep deleted tenant",
                    self.tenant_documents()
                        .delete_many(doc! { "organization_id": tenant }),
                )
                .await?;
            if swept.deleted_count > 0 {
                report.repaired.push(format!(
                    "deleted {} documents of deleted organization {tenant}",
                    swept.deleted_count
                ));
            }
            self.run(
                "drop tombstone",
                self.reservations().delete_one(doc! { "_id": key }),
            )
            .await?;
        }
        Ok(())
    }

    /// Refresh tokens that expired or whose organization is gone, finished idempotency
    /// records, and throttle windows long over (no window is longer than a day).
    pub(super) async fn expire_records(
        &self,
        org_ids: &[&str],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        self.run(
            "expire refresh tokens",
            self.refresh().delete_many(doc! { "$or": [
                { "expires_at": { "$lt": bson_time(now) } },
                { "organization_id": { "$exists": true, "$nin": org_ids } },
            ] }),
        )
        .await?;

        self.expire_idempotent().await?;

        let old = now.timestamp() - MAX_LOGIN_WINDOW_SECONDS;
        self.run(
            "expire login attempts",
            self.attempts()
                .delete_many(doc! { "window_start": { "$lt": old } }),
        )
        .await?;
        self.run(
            "expire login windows",
            self.windows()
                .delete_many(doc! { "window_start": { "$lt": old } }),
        )
        .await?;
        Ok(())
    }
}
