//! Indexes at start-up, health, the reconciler (its passes are in `reconcile.rs`), the
//! consistency check and tenant-layout changes on MongoDB.

use std::time::Duration;

use async_trait::async_trait;
use futures::TryStreamExt;
use mongodb::bson::{doc, Document};
use mongodb::options::IndexOptions;
use mongodb::IndexModel;

use super::api_keys::API_KEYS;
use super::audit::AUDIT_EVENTS;
use super::audit_outbox::AUDIT_OUTBOX;
use super::claims::{reservation_keys, DELETED_PREFIX};
use super::codec::bson_time;
use super::emails::EMAILS_UPGRADE;
use super::layout::{SKELETONS_UPGRADE, TENANT_DOCUMENTS};
use super::teams_upkeep::{adopt_admins, team_problems, MEMBERSHIPS_UPGRADE};
use super::tenant::owned_collections;
use super::{
    MongoStore, ADMINS, INVITATIONS, LOGIN_ATTEMPTS, MEMBERSHIPS, ORGS, RESERVATIONS, STATE_ACTIVE,
};
use crate::domain::TenantLayout;
use crate::storage::{LayoutChange, Maintenance, ReconcileReport, StoreError};

#[async_trait]
impl Maintenance for MongoStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        self.run("read server clock", self.clock.sync(&self.db))
            .await?;
        // Once per database: the backfill reads every organization (no index serves it), so
        // later start-ups only read its record.
        if !self.upgrade_done(SKELETONS_UPGRADE).await? {
            self.add_skeletons().await?;
            self.record_upgrade(SKELETONS_UPGRADE).await?;
        }
        let unique = |keys: Document, name: &str| {
            IndexModel::builder()
                .keys(keys)
                .options(
                    IndexOptions::builder()
                        .unique(true)
                        .name(name.to_owned())
                        .build(),
                )
                .build()
        };
        let plain = |keys: Document, name: &str| {
            IndexModel::builder()
                .keys(keys)
                .options(IndexOptions::builder().name(name.to_owned()).build())
                .build()
        };
        // One index per command: FerretDB 1.24 drops the connection when a multi-index
        // createIndexes names indexes that already exist (every start-up after the first).
        let indexes = [
            (ORGS, unique(doc! { "slug": 1 }, "slug_unique")),
            (ORGS, plain(doc! { "state": 1 }, "state")),
            (ADMINS, unique(doc! { "email": 1 }, "email_unique")),
            (
                MEMBERSHIPS,
                plain(doc! { "account_id": 1, "joined_at": 1 }, "account_joined"),
            ),
            (
                MEMBERSHIPS,
                plain(
                    doc! { "organization_id": 1, "joined_at": 1, "account_id": 1 },
                    "organization_joined",
                ),
            ),
            (
                INVITATIONS,
                plain(
                    doc! { "organization_id": 1, "created_at": 1, "_id": 1 },
                    "organization_created",
                ),
            ),
            (INVITATIONS, plain(doc! { "token_hash": 1 }, "token_hash")),
            (API_KEYS, unique(doc! { "prefix": 1 }, "prefix_unique")),
            (
                AUDIT_EVENTS,
                unique(doc! { "event_id": 1 }, "event_id_unique"),
            ),
            (
                AUDIT_EVENTS,
                plain(
                    doc! { "organization_id": 1, "sequence": 1 },
                    "organization_sequence",
                ),
            ),
            (
                AUDIT_EVENTS,
                plain(
                    doc! { "organization_id": 1, "action": 1, "sequence": 1 },
                    "organization_action",
                ),
            ),
            (
                AUDIT_EVENTS,
                plain(
                    doc! { "organization_id": 1, "actor_id": 1, "sequence": 1 },
                    "organization_actor",
                ),
            ),
            (
                AUDIT_EVENTS,
                plain(doc! { "occurred_at": 1 }, "occurred_at"),
            ),
            (AUDIT_OUTBOX, plain(doc! { "created_at": 1 }, "created_at")),
            (
                API_KEYS,
                plain(
                    doc! { "organization_id": 1, "created_at": 1, "_id": 1 },
                    "organization_created",
                ),
            ),
            (
                INVITATIONS,
                plain(doc! { "old_token_hashes": 1 }, "old_token_hashes"),
            ),
            (
                RESERVATIONS,
                plain(doc! { "organization_id": 1 }, "organization_id"),
            ),
            (
                LOGIN_ATTEMPTS,
                plain(doc! { "key": 1, "window_start": 1 }, "key_window"),
            ),
            // The shard key for a sharded cluster, and every shared-layout query's prefix.
            (
                TENANT_DOCUMENTS,
                plain(
                    doc! { "organization_id": 1, "_id": 1 },
                    "organization_document",
                ),
            ),
        ];
        for (collection, index) in indexes {
            self.run(
                "create index",
                self.db
                    .collection::<Document>(collection)
                    .create_index(index),
            )
            .await?;
        }
        // Once per database, after the indexes: each admin made before teams becomes an
        // account with an owner membership.
        if !self.upgrade_done(MEMBERSHIPS_UPGRADE).await? {
            let adopted = adopt_admins(self).await?;
            tracing::info!(
                owners = adopted,
                "admins became accounts with owner memberships"
            );
            self.record_upgrade(MEMBERSHIPS_UPGRADE).await?;
        }
        // Once per database, before serving: lookups by email go through the index, so the
        // accounts made before it must be in it (later stragglers: every reconciler pass).
        if !self.upgrade_done(EMAILS_UPGRADE).await? {
            let indexed = self.index_emails().await?;
            tracing::info!(accounts = indexed, "account emails indexed");
            self.record_upgrade(EMAILS_UPGRADE).await?;
        }
        self.check_layout().await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        // A read of the data itself, not just a `ping` command the server answers from memory.
        self.run("health read", self.orgs().find_one(doc! {}))
            .await
            .map(drop)
    }

    async fn reconcile(&self, grace: Duration) -> Result<ReconcileReport, StoreError> {
        let mut report = ReconcileReport::default();
        self.run("read server clock", self.clock.sync(&self.db))
            .await?;
        self.announce().await?;
        let now = self.clock.now();
        let cutoff = bson_time(now - chrono::Duration::from_std(grace).unwrap_or_default());
        self.finish_deletes(&mut report).await?;
        self.settle_creates(cutoff, &mut report).await?;
        self.finish_renames(cutoff, &mut report).await?;
        self.settle_accepts(cutoff, &mut report).await?;
        self.sweep_deleted_tenants(cutoff, &mut report).await?;
        // Before the organizations are read (see `remove_orphans`).
        let collections = self.tenant_collections().await?;
        let owners = self.owners().await?;
        self.release_unused_reservations(&owners, cutoff, &mut report)
            .await?;
        self.remove_orphans(collections, &owners, &mut report)
            .await?;
        // Read once for both sweeps. After the teams' sweep, which deletes accounts (and drops
        // them from `accounts`): their entries are freed by the email sweep.
        let mut accounts = self.accounts_by_id().await?;
        self.sweep_teams(&owners, &mut accounts, cutoff, &mut report)
            .await?;
        self.sweep_emails(&accounts, cutoff, &mut report).await?;
        self.sweep_api_keys(&owners, cutoff, &mut report).await?;
        // Last: every interrupted change is finished or undone by now, so a staged event's
        // check sees how it ended.
        self.settle_audit(cutoff, &mut report).await?;
        self.expire_records(&owners, now, cutoff).await?;
        Ok(report)
    }

    async fn consistency_problems(&self) -> Result<Vec<String>, StoreError> {
        let mut problems = Vec::new();
        let orgs: Vec<Document> = self
            .run("find", async {
                self.orgs().find(doc! {}).await?.try_collect().await
            })
            .await?;
        let reservations: Vec<Document> = self
            .run("find", async {
                self.reservations().find(doc! {}).await?.try_collect().await
            })
            .await?;
        let collections = self.tenant_collections().await?;
        problems.extend(team_problems(self, &orgs).await?);
        problems.extend(self.email_problems().await?);
        problems.extend(self.api_key_problems(&orgs).await?);
        problems.extend(self.audit_problems().await?);
        for org in &orgs {
            let id = org.get_str("_id").unwrap_or("?");
            let state = org.get_str("state").unwrap_or("?");
            if state != STATE_ACTIVE || org.get_document("pending").is_ok() {
                problems.push(format!("organization {id} is unfinished ({state})"));
            }
            let collection = org.get_str("collection_name").unwrap_or("?");
            let has_collection = collections.iter().any(|c| c == collection);
            match self.layout()? {
                TenantLayout::Collection if !has_collection => {
                    problems.push(format!("organization {id} has no collection {collection}"));
                }
                TenantLayout::Shared if has_collection => problems.push(format!(
                    "organization {id} has a collection {collection} in the shared layout"
                )),
                _ => {}
            }
            for key in reservation_keys(org) {
                if !reservations.iter().any(|r| {
                    r.get_str("_id").ok() == Some(key.as_str())
                        && r.get_str("organization_id").ok() == Some(id)
                }) {
                    problems.push(format!("organization {id} lacks reservation {key}"));
                }
            }
        }
        for res in &reservations {
            let key = res.get_str("_id").unwrap_or("?");
            if key.starts_with(DELETED_PREFIX) {
                continue; // a tombstone, swept once past the grace period
            }
            let owner = res.get_str("organization_id").unwrap_or("?");
            let used = orgs.iter().any(|o| {
                o.get_str("_id").ok() == Some(owner) && reservation_keys(o).iter().any(|k| k == key)
            });
            if !used {
                problems.push(format!("orphan reservation {key}"));
            }
        }
        for collection in &collections {
            if !orgs
                .iter()
                .any(|o| owned_collections(o).contains(collection))
            {
                problems.push(format!("orphan collection {collection}"));
            }
        }
        // A scan of every document on FerretDB (MongoDB answers from the index): an audit, so
        // it gets the bound of a scan, not of a point operation.
        let owners = self
            .run_scan(
                "list document owners",
                self.tenant_documents().distinct("organization_id", doc! {}),
            )
            .await?;
        for owner in owners.iter().filter_map(|o| o.as_str()) {
            if self.layout()? == TenantLayout::Collection {
                problems.push(format!(
                    "documents of {owner} in tenant_documents in the collection layout"
                ));
            } else if !orgs.iter().any(|o| o.get_str("_id").ok() == Some(owner)) {
                problems.push(format!("documents of vanished organization {owner}"));
            }
        }
        Ok(problems)
    }

    async fn change_tenant_layout(&self, to: TenantLayout) -> Result<LayoutChange, StoreError> {
        self.move_tenants(to).await
    }
}

impl MongoStore {
    /// Gives organizations made before look-alike names were refused their skeleton and its
    /// claim. Two existing look-alikes both keep working: the one that loses the claim is
    /// left without a skeleton (and logged), so only new names are held to the rule.
    pub(super) async fn add_skeletons(&self) -> Result<(), StoreError> {
        let legacy: Vec<Document> = self
            .run("find", async {
                self.orgs()
                    .find(doc! { "state": STATE_ACTIVE, "skeleton": { "$exists": false } })
                    .await?
                    .try_collect()
                    .await
            })
            .await?;
        for org in legacy {
            let id = org.get_str("_id").unwrap_or_default();
            let skeleton = crate::domain::skeleton_of(org.get_str("slug").unwrap_or_default());
            if self
                .claim(&format!("skeleton:{skeleton}"), id, self.clock.now())
                .await?
            {
                self.run(
                    "set skeleton",
                    self.orgs().update_one(
                        doc! { "_id": id },
                        doc! { "$set": { "skeleton": &skeleton } },
                    ),
                )
                .await?;
            } else {
                tracing::warn!(organization_id = %id, "an older organization's name looks like this one's");
            }
        }
        Ok(())
    }
}
