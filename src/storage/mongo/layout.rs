//! Where tenant documents live on MongoDB, and moving them from one layout to the other.
//!
//! - `collection` (the original's shape): the tenant's documents in its collection `org_<slug>`.
//! - `shared`: every tenant's documents in `tenant_documents` as `{_id, organization_id,
//!   document, version, created_at, updated_at}` (the records of `documents.rs` plus the
//!   tenant); `_id` is the document's own ObjectId (unique across tenants), `document` the
//!   tenant's data, so no key of the tenant's can collide with ours. For a sharded cluster the
//!   shard key is `{organization_id: 1, _id: 1}` (the index this module creates): one tenant's
//!   documents stay together, and a large tenant can still be split.
//!
//! The database records its layout (`settings`, `_id: "tenant_layout"`); an instance whose
//! `TENANT_LAYOUT` differs refuses to start, so two layouts are never written at once. Moving
//! between layouts (`org-service migrate --tenant-layout`) first records `migrating_to` and
//! refuses while an instance serves. Serving instances keep a presence record (`instances`)
//! that their reconciler renews. An instance writes its presence *before* it reads the layout
//! record, and a move records `migrating_to` *before* it looks for presences: whichever comes
//! second sees the other, so an instance never serves during a move.
//!
//! A move is resumable: per tenant, documents are copied (a copy already made is a duplicate
//! key, skipped), then the source is removed; the record changes to the new layout last.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use mongodb::error::ErrorKind;
use mongodb::Collection;

use super::codec::{bson_time, translate, DUPLICATE_KEY};
use super::tenant::owned_collections;
use super::MongoStore;
use crate::domain::TenantLayout;
use crate::storage::{LayoutChange, StoreError};

pub(super) const TENANT_DOCUMENTS: &str = "tenant_documents";
const SETTINGS: &str = "settings";
const INSTANCES: &str = "instances";
const LAYOUT_RECORD: &str = "tenant_layout";
/// The record of the one-time backfill of look-alike skeletons (`upgrade:skeletons`).
pub(super) const SKELETONS_UPGRADE: &str = "skeletons";
/// Documents per `insert_many` when moving a tenant.
const MOVE_BATCH: usize = 1000;

/// The layout in use, and whether it has been checked against the database's record. Until
/// it has, tenant operations answer "unavailable" rather than guess.
pub(super) struct LayoutState {
    current: AtomicU8,
    verified: AtomicBool,
}

impl LayoutState {
    pub(super) fn new(layout: TenantLayout) -> Self {
        Self {
            current: AtomicU8::new(layout as u8),
            verified: AtomicBool::new(false),
        }
    }

    fn get(&self) -> TenantLayout {
        if self.current.load(Ordering::Acquire) == TenantLayout::Shared as u8 {
            TenantLayout::Shared
        } else {
            TenantLayout::Collection
        }
    }

    fn set_verified(&self, layout: TenantLayout) {
        self.current.store(layout as u8, Ordering::Release);
        self.verified.store(true, Ordering::Release);
    }
}

/// A serving instance's presence record.
pub(super) struct Presence {
    id: String,
    ttl: Duration,
}

impl Presence {
    pub(super) fn new(ttl: Duration) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            ttl,
        }
    }
}

/// The database's record of its layout.
struct Recorded {
    layout: TenantLayout,
    migrating_to: Option<TenantLayout>,
}

fn parse_layout(record: &Document, field: &str) -> Result<Option<TenantLayout>, StoreError> {
    match record.get_str(field) {
        Ok(name) => name.parse().map(Some).map_err(StoreError::Backend),
        Err(_) => Ok(None),
    }
}

impl MongoStore {
    pub(super) fn tenant_documents(&self) -> Collection<Document> {
        self.db.collection(TENANT_DOCUMENTS)
    }

    fn settings(&self) -> Collection<Document> {
        self.db.collection(SETTINGS)
    }

    fn instances(&self) -> Collection<Document> {
        self.db.collection(INSTANCES)
    }

    /// True once the one-time data upgrade `name` has been recorded as done.
    pub(super) async fn upgrade_done(&self, name: &str) -> Result<bool, StoreError> {
        self.run(
            "read upgrade record",
            self.settings()
                .find_one(doc! { "_id": format!("upgrade:{name}") }),
        )
        .await
        .map(|record| record.is_some())
    }

    /// Records the one-time data upgrade `name` as done (idempotent).
    pub(super) async fn record_upgrade(&self, name: &str) -> Result<(), StoreError> {
        match self
            .run(
                "record upgrade",
                self.settings().insert_one(
                    doc! { "_id": format!("upgrade:{name}"), "at": bson_time(self.clock.now()) },
                ),
            )
            .await
        {
            Ok(_) | Err(StoreError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The layout tenant operations use; unavailable until checked against the record.
    pub(super) fn layout(&self) -> Result<TenantLayout, StoreError> {
        if self.layout.verified.load(Ordering::Acquire) {
            Ok(self.layout.get())
        } else {
            Err(StoreError::Unavailable(
                "the tenant layout is not checked yet (the store was unreachable)".into(),
            ))
        }
    }

    async fn recorded_layout(&self) -> Result<Option<Recorded>, StoreError> {
        let Some(record) = self
            .run(
                "read tenant layout",
                self.settings().find_one(doc! { "_id": LAYOUT_RECORD }),
            )
            .await?
        else {
            return Ok(None);
        };
        let layout = parse_layout(&record, "layout")?
            .ok_or_else(|| StoreError::Backend("the tenant layout record has no layout".into()))?;
        Ok(Some(Recorded {
            layout,
            migrating_to: parse_layout(&record, "migrating_to")?,
        }))
    }

    /// The record, written first if absent: a database with organizations but no record was
    /// made before layouts existed, so it is in the collection layout; an empty one takes the
    /// configured layout. Of instances recording at once, the first insert wins.
    async fn recorded_or_initial(&self, wanted: TenantLayout) -> Result<Recorded, StoreError> {
        if let Some(recorded) = self.recorded_layout().await? {
            return Ok(recorded);
        }
        let populated = self
            .run("find organization", self.orgs().find_one(doc! {}))
            .await?
            .is_some();
        let initial = if populated {
            TenantLayout::Collection
        } else {
            wanted
        };
        match self
            .run(
                "record tenant layout",
                self.settings()
                    .insert_one(doc! { "_id": LAYOUT_RECORD, "layout": initial.as_str() }),
            )
            .await
        {
            Ok(_) | Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
        self.recorded_layout()
            .await?
            .ok_or_else(|| StoreError::Backend("the tenant layout record vanished".into()))
    }

    /// Announces this instance (if it serves), then checks the configured layout against the
    /// record. Run by every migration at start-up.
    pub(super) async fn check_layout(&self) -> Result<(), StoreError> {
        self.announce().await?;
        let wanted = self.layout.get();
        let recorded = self.recorded_or_initial(wanted).await?;
        let verdict = if let Some(to) = recorded.migrating_to {
            Err(StoreError::Refused(format!(
                "a change of the tenant layout from {} to {to} is unfinished: run \
                 `org-service migrate --tenant-layout {to}` with every instance stopped",
                recorded.layout
            )))
        } else if recorded.layout != wanted {
            Err(StoreError::Refused(format!(
                "this database keeps tenant documents in the {} layout but TENANT_LAYOUT={wanted}: \
                 set TENANT_LAYOUT={}, or move them with `org-service migrate --tenant-layout {wanted}` \
                 with every instance stopped",
                recorded.layout, recorded.layout
            )))
        } else {
            Ok(())
        };
        match verdict {
            Ok(()) => {
                self.layout.set_verified(wanted);
                Ok(())
            }
            Err(e) => {
                self.sign_off().await;
                Err(e)
            }
        }
    }

    /// Writes or renews this instance's presence record (serving instances only).
    pub(super) async fn announce(&self) -> Result<(), StoreError> {
        let Some(presence) = &self.presence else {
            return Ok(());
        };
        let until = self.clock.now() + chrono::Duration::from_std(presence.ttl).unwrap_or_default();
        self.run(
            "announce instance",
            self.instances()
                .update_one(
                    doc! { "_id": &presence.id },
                    doc! { "$set": { "expires_at": bson_time(until) } },
                )
                .upsert(true),
        )
        .await
        .map(drop)
    }

    /// Removes this instance's presence record at shutdown (best effort: it expires anyway).
    pub(super) async fn sign_off(&self) {
        if let Some(presence) = &self.presence {
            let removed = self
                .run(
                    "sign off",
                    self.instances().delete_one(doc! { "_id": &presence.id }),
                )
                .await;
            if let Err(e) = removed {
                tracing::warn!(error = %e, "could not remove this instance's presence record");
            }
        }
    }

    /// How many other instances have a live presence record.
    async fn serving_instances(&self) -> Result<u64, StoreError> {
        let mut filter = doc! { "expires_at": { "$gt": bson_time(self.clock.now()) } };
        if let Some(presence) = &self.presence {
            filter.insert("_id", doc! { "$ne": &presence.id });
        }
        self.run("count instances", self.instances().count_documents(filter))
            .await
    }

    /// Refuses while instances serve: their presence records have not expired.
    async fn refuse_if_serving(&self) -> Result<(), StoreError> {
        match self.serving_instances().await? {
            0 => Ok(()),
            n => Err(StoreError::Refused(format!(
                "{n} instance(s) serve this database: stop every instance before changing the \
                 tenant layout (a crashed instance's record expires three reconciler intervals \
                 after its last pass)"
            ))),
        }
    }

    /// The move behind `org-service migrate --tenant-layout`.
    pub(super) async fn move_tenants(&self, to: TenantLayout) -> Result<LayoutChange, StoreError> {
        self.run("read server clock", self.clock.sync(&self.db))
            .await?;
        let recorded = self.recorded_or_initial(self.layout.get()).await?;
        let from = recorded.layout;
        match recorded.migrating_to {
            None if from == to => {
                self.layout.set_verified(to);
                return Ok(LayoutChange {
                    from,
                    to,
                    tenants: 0,
                    documents: 0,
                });
            }
            None => {
                self.refuse_if_serving().await?;
                // Settle interrupted operations in the old layout first: with no instance
                // serving, every unfinished one is abandoned.
                self.layout.set_verified(from);
                <Self as crate::storage::Maintenance>::reconcile(self, Duration::ZERO).await?;
                self.run(
                    "mark layout change",
                    self.settings().update_one(
                        doc! { "_id": LAYOUT_RECORD, "migrating_to": { "$exists": false } },
                        doc! { "$set": { "migrating_to": to.as_str() } },
                    ),
                )
                .await?;
                if let Err(e) = self.refuse_if_serving().await {
                    // An instance started between the two looks: leave the record as it was.
                    self.run(
                        "unmark layout change",
                        self.settings().update_one(
                            doc! { "_id": LAYOUT_RECORD },
                            doc! { "$unset": { "migrating_to": "" } },
                        ),
                    )
                    .await?;
                    return Err(e);
                }
            }
            Some(pending) if pending != to => {
                return Err(StoreError::Refused(format!(
                    "a change of the tenant layout to {pending} is unfinished: finish it with \
                     `org-service migrate --tenant-layout {pending}` first"
                )));
            }
            Some(_) => self.refuse_if_serving().await?,
        }
        self.failpoints.reached("layout.after_mark").await;

        let orgs: Vec<Document> = self
            .run("find", async {
                self.orgs().find(doc! {}).await?.try_collect().await
            })
            .await?;
        let mut change = LayoutChange {
            from,
            to,
            tenants: 0,
            documents: 0,
        };
        let existing = self.tenant_collections().await?;
        for org in &orgs {
            let moved = match to {
                TenantLayout::Shared => self.move_to_shared(org, &existing).await?,
                TenantLayout::Collection => self.move_to_collection(org).await?,
            };
            change.tenants += 1;
            change.documents += moved;
            self.failpoints.reached("layout.after_tenant").await;
        }
        self.run(
            "finish layout change",
            self.settings().update_one(
                doc! { "_id": LAYOUT_RECORD },
                doc! { "$set": { "layout": to.as_str() }, "$unset": { "migrating_to": "" } },
            ),
        )
        .await?;
        self.layout.set_verified(to);
        Ok(change)
    }

    /// Copies the tenant's collections into `tenant_documents`, then drops them.
    async fn move_to_shared(&self, org: &Document, existing: &[String]) -> Result<u64, StoreError> {
        let id = org.get_str("_id").unwrap_or_default();
        let mut moved = 0;
        for name in owned_collections(org) {
            if !existing.contains(&name) {
                continue;
            }
            let source = self.db.collection::<Document>(&name);
            moved += self
                .copy(&source, doc! {}, &self.tenant_documents(), |mut d| {
                    if d.contains_key("document") {
                        // A record of the documents API: it only gains its tenant.
                        d.insert("organization_id", id);
                        return d;
                    }
                    // A document stored before the API, its data at the top level.
                    let own_id = d.remove("_id").unwrap_or(Bson::Null);
                    doc! { "_id": own_id, "organization_id": id, "document": d }
                })
                .await?;
            self.failpoints.reached("layout.after_copy").await;
            self.drop_collection(&name).await?;
        }
        Ok(moved)
    }

    /// Copies the tenant's documents out of `tenant_documents` into its collection, then
    /// deletes them there.
    async fn move_to_collection(&self, org: &Document) -> Result<u64, StoreError> {
        let id = org.get_str("_id").unwrap_or_default();
        let name = org.get_str("collection_name").unwrap_or_default();
        self.create_collection(name).await?;
        let target = self.db.collection::<Document>(name);
        let moved = self
            .copy(
                &self.tenant_documents(),
                doc! { "organization_id": id },
                &target,
                |mut d| {
                    // The record keeps its shape; only the tenant key goes.
                    d.remove("organization_id");
                    d
                },
            )
            .await?;
        self.failpoints.reached("layout.after_copy").await;
        self.run(
            "delete moved documents",
            self.tenant_documents()
                .delete_many(doc! { "organization_id": id }),
        )
        .await?;
        Ok(moved)
    }

    /// Copies `filter`'s documents of `source` into `target`, reshaped by `reshape`, in
    /// batches; a document copied by an earlier, interrupted run is a duplicate key, skipped.
    async fn copy(
        &self,
        source: &Collection<Document>,
        filter: Document,
        target: &Collection<Document>,
        reshape: impl Fn(Document) -> Document,
    ) -> Result<u64, StoreError> {
        let mut cursor = self.run("read documents", source.find(filter)).await?;
        let mut batch = Vec::with_capacity(MOVE_BATCH);
        let mut copied = 0;
        loop {
            let next = tokio::time::timeout(self.timeout, cursor.try_next())
                .await
                .map_err(|_| StoreError::Unavailable("read documents: timed out".into()))?
                .map_err(|e| translate("read documents", &e))?;
            let done = next.is_none();
            if let Some(d) = next {
                batch.push(reshape(d));
            }
            if batch.len() == MOVE_BATCH || (done && !batch.is_empty()) {
                copied += batch.len() as u64;
                self.insert_skipping_copies(target, std::mem::take(&mut batch))
                    .await?;
            }
            if done {
                return Ok(copied);
            }
        }
    }

    async fn insert_skipping_copies(
        &self,
        target: &Collection<Document>,
        batch: Vec<Document>,
    ) -> Result<(), StoreError> {
        let inserted =
            tokio::time::timeout(self.timeout * 10, target.insert_many(batch).ordered(false))
                .await
                .map_err(|_| StoreError::Unavailable("copy documents: timed out".into()))?;
        match inserted {
            Ok(_) => Ok(()),
            Err(e) => match e.kind.as_ref() {
                ErrorKind::InsertMany(failure)
                    if failure.write_concern_error.is_none()
                        && failure
                            .write_errors
                            .as_ref()
                            .is_some_and(|errs| errs.iter().all(|w| w.code == DUPLICATE_KEY)) =>
                {
                    Ok(())
                }
                _ => Err(translate("copy documents", &e)),
            },
        }
    }
}
