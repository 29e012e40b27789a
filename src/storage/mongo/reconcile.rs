//! The reconciler's passes on MongoDB, each idempotent, so instances racing on them agree:
//! finish deletes, settle abandoned creates, finish abandoned renames, sweep the documents of
//! deleted tenants, release reservations nothing uses, remove orphans, expire old records.
//! Teams' passes (settle interrupted accepts, sweep accounts and memberships) are in
//! `invitations.rs` and `teams_upkeep.rs`.
//! [`super::maintenance`] runs them in that order.

use std::collections::{HashMap, HashSet};

use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, DateTime as BsonDateTime, Document};
use mongodb::Collection;

use super::claims::{reservation_keys, Outcome, DELETED_PREFIX};
use super::codec::bson_time;
use super::tenant::owned_collections;
use super::{MongoStore, STATE_ACTIVE, STATE_CREATING, STATE_DELETING};
use crate::storage::{ReconcileReport, StoreError, MAX_LOGIN_WINDOW_SECONDS};

/// Orphans deleted per `delete_many` by the sweeps.
const SWEEP_BATCH: usize = 500;

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

    /// Streams the documents of `collection` matching `filter`, with only `fields`, to `visit`:
    /// how the sweeps read a collection without holding all of it (or sending every id back in
    /// a `$nin`, which outgrows a BSON document at about half a million organizations).
    pub(super) async fn scan(
        &self,
        what: &str,
        collection: &Collection<Document>,
        filter: Document,
        fields: Document,
        mut visit: impl FnMut(Document),
    ) -> Result<(), StoreError> {
        self.run_scan(what, async {
            let mut cursor = collection.find(filter).projection(fields).await?;
            while let Some(d) = cursor.try_next().await? {
                visit(d);
            }
            Ok(())
        })
        .await
    }

    /// Deletes the documents of `collection` matching `filter` that `orphan` (given the
    /// `fields` read) says belong to nothing; how many it deleted.
    pub(super) async fn sweep(
        &self,
        what: &str,
        collection: &Collection<Document>,
        filter: Document,
        fields: Document,
        orphan: impl Fn(&Document) -> bool,
    ) -> Result<u64, StoreError> {
        let mut orphans = Vec::new();
        self.scan(what, collection, filter, fields, |d| {
            if orphan(&d) {
                orphans.extend(d.get("_id").cloned());
            }
        })
        .await?;
        self.delete_ids(what, collection, &orphans).await
    }

    /// Deletes the documents of `collection` with these `_id`s, in batches; how many it deleted.
    pub(super) async fn delete_ids(
        &self,
        what: &str,
        collection: &Collection<Document>,
        ids: &[Bson],
    ) -> Result<u64, StoreError> {
        let mut deleted = 0;
        for batch in ids.chunks(SWEEP_BATCH) {
            deleted += self
                .run(
                    what,
                    collection.delete_many(doc! { "_id": { "$in": batch } }),
                )
                .await?
                .deleted_count;
        }
        Ok(deleted)
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

    /// What the sweeps need to know of every organization, read as a stream of a few fields.
    pub(super) async fn owners(&self) -> Result<Owners, StoreError> {
        let mut owners = Owners::default();
        self.scan(
            "read organizations",
            &self.orgs(),
            doc! {},
            doc! { "slug": 1, "skeleton": 1, "pending": 1, "state": 1, "collection_name": 1 },
            |org| owners.add(&org),
        )
        .await?;
        Ok(owners)
    }

    /// Reservations nothing refers to (a crash between claim and use) are released.
    pub(super) async fn release_unused_reservations(
        &self,
        owners: &Owners,
        cutoff: BsonDateTime,
        report: &mut ReconcileReport,
    ) -> Result<(), StoreError> {
        // Only the unused ones are kept: the others are most reservations there are.
        let mut unused = Vec::new();
        self.scan(
            "find old reservations",
            &self.reservations(),
            doc! { "created_at": { "$lt": cutoff } },
            doc! { "organization_id": 1 },
            |res| {
                let key = res.get_str("_id").unwrap_or_default();
                let owner = res.get_str("organization_id").unwrap_or_default();
                // `sweep_deleted_tenants` owns tombstones.
                if !key.starts_with(DELETED_PREFIX) && !owners.holds(owner, key) {
                    unused.push((key.to_owned(), owner.to_owned()));
                }
            },
        )
        .await?;
        for (key, owner) in unused {
            self.release(&key, &owner).await?;
            report.repaired.push(format!("released reservation {key}"));
        }
        Ok(())
    }

    /// Tenant collections nothing owns or claims (accounts and memberships nothing owns are
    /// `sweep_teams`'s). `collections` must be listed before `owners` was read: a create claims
    /// its slug and inserts its organization before it makes its collection, so every
    /// collection in an earlier list that belongs to something shows in the later reads. Listed
    /// after them, an organization created in between had a collection and no owner in sight,
    /// and lost its collection (seen under load with three instances).
    pub(super) async fn remove_orphans(
        &self,
        collections: Vec<String>,
        owners: &Owners,
        report: &mut ReconcileReport,
    ) -> Result<(), StoreError> {
        let mut claimed = HashSet::new();
        self.scan(
            "find slug claims",
            &self.reservations(),
            doc! { "_id": { "$regex": "^slug:" } },
            doc! { "_id": 1 },
            |r| {
                if let Some(slug) = r.get_str("_id").ok().and_then(|k| k.strip_prefix("slug:")) {
                    claimed.insert(format!("org_{slug}"));
                }
            },
        )
        .await?;
        self.failpoints.reached("reconcile.after_reads").await;
        for collection in collections {
            if !owners.collections.contains(&collection) && !claimed.contains(&collection) {
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
    /// records, and throttle windows long over (no window is longer than a day). A token is
    /// judged by its organization only once issued before `cutoff`: `owners` was read at the
    /// start of the pass, and an organization created since, whose admin has logged in, is not
    /// in it. (Spend and revocation markers carry no issue time; they go when they expire.)
    pub(super) async fn expire_records(
        &self,
        owners: &Owners,
        now: chrono::DateTime<chrono::Utc>,
        cutoff: BsonDateTime,
    ) -> Result<(), StoreError> {
        self.run(
            "expire refresh tokens",
            self.refresh()
                .delete_many(doc! { "expires_at": { "$lt": bson_time(now) } }),
        )
        .await?;
        self.sweep(
            "delete refresh tokens of deleted organizations",
            &self.refresh(),
            doc! { "organization_id": { "$exists": true }, "issued_at": { "$lt": cutoff } },
            doc! { "organization_id": 1 },
            |t| !owners.has(t.get_str("organization_id").unwrap_or_default()),
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

/// What the reconciler's sweeps need to know of every organization: the reservations it holds
/// and the collections it owns. Small on purpose: a pass used to hold every organization's whole
/// document, so its memory grew by kilobytes per organization (and each reservation was checked
/// against every organization in turn).
#[derive(Default)]
pub(super) struct Owners {
    /// Organization id → the reservation keys it holds.
    keys: HashMap<String, Vec<String>>,
    collections: HashSet<String>,
}

impl Owners {
    fn add(&mut self, org: &Document) {
        if let Ok(id) = org.get_str("_id") {
            self.keys.insert(id.to_owned(), reservation_keys(org));
        }
        self.collections.extend(owned_collections(org));
    }

    /// True when organization `org_id` exists and holds reservation `key`.
    fn holds(&self, org_id: &str, key: &str) -> bool {
        self.keys
            .get(org_id)
            .is_some_and(|keys| keys.iter().any(|k| k == key))
    }

    /// True when organization `org_id` exists (in any state).
    pub(super) fn has(&self, org_id: &str) -> bool {
        self.keys.contains_key(org_id)
    }
}
