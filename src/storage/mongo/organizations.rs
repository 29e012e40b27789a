//! Organizations and their accounts on MongoDB: create (claims, then documents in a
//! recognisable order, then a commit record), reads of active organizations only, and delete
//! (mark, then purge). Renames are in `rename.rs`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mongodb::bson::{doc, Bson, Document};

use super::audit_outbox::Check;
use super::claims::{Outcome, DELETED_PREFIX};
use super::codec::{account_from_doc, bson_time, membership_key, org_from_doc};
use super::tenant::owned_collections;
use super::{MongoStore, STATE_ACTIVE, STATE_CREATING, STATE_DELETING};
use crate::domain::{Account, NewEvent, NewOrganization, OrgName, Organization, TenantLayout};
use crate::storage::{Organizations, StoreError, Taken};

#[async_trait]
impl Organizations for MongoStore {
    async fn create_organization(
        &self,
        new: &NewOrganization,
        events: &[NewEvent],
    ) -> Result<Organization, StoreError> {
        // Refused before anything is written (the layout is not checked yet): nothing to stage.
        self.layout()?;
        let check = Check::OrgActive {
            org: new.id.clone(),
        };
        self.audited(events, check, self.create_unaudited(new), |_| true)
            .await
    }

    async fn organization_by_slug(&self, slug: &str) -> Result<Option<Organization>, StoreError> {
        // Through the slug's reservation, two reads by `_id`: FerretDB answers any other
        // filter by reading the whole collection, index or not, so a lookup by `slug` slowed
        // every create and `/org/get` as organizations accumulated. Every organization holds
        // the reservation of its slug from before its insert until after its purge (renames
        // claim the new slug before the switch and release the old one after), which
        // `consistency_problems` checks; the organization is checked to bear the slug still.
        let key = format!("slug:{slug}");
        let reservations = self.reservations();
        let Some(owner) = self
            .pointer("find reservation", &reservations, &key, "organization_id")
            .await?
        else {
            return Ok(None);
        };
        Ok(self
            .active_org(doc! { "_id": owner })
            .await?
            .filter(|org| org.slug == slug))
    }

    async fn organization_by_id(&self, id: &str) -> Result<Option<Organization>, StoreError> {
        self.active_org(doc! { "_id": id }).await
    }

    async fn account_by_email(&self, email: &str) -> Result<Option<Account>, StoreError> {
        // By `_id` through the email index (see `emails.rs`).
        self.account_with_email(email).await
    }

    async fn account_by_id(&self, id: &str) -> Result<Option<Account>, StoreError> {
        self.account(doc! { "_id": id }).await
    }

    async fn rename_organization(
        &self,
        id: &str,
        new_name: &OrgName,
        at: DateTime<Utc>,
        events: &[NewEvent],
    ) -> Result<Organization, StoreError> {
        let check = Check::OrgName {
            org: id.to_owned(),
            name: new_name.as_str().to_owned(),
        };
        let rename = async {
            let lock = self.lock(id).await?;
            let result = self.rename_locked(id, new_name, at).await;
            lock.release().await;
            result
        };
        self.audited(events, check, rename, |_| true).await
    }

    async fn delete_organization(&self, id: &str, events: &[NewEvent]) -> Result<bool, StoreError> {
        let check = Check::OrgGone { org: id.to_owned() };
        let delete = async {
            let lock = self.lock(id).await?;
            let result = self.delete_locked(id).await;
            // A completed delete already removed the lock with the organization's reservations.
            lock.release().await;
            result
        };
        self.audited(events, check, delete, |deleted| *deleted)
            .await
    }

    async fn count_organizations(&self) -> Result<u64, StoreError> {
        self.run(
            "count organizations",
            self.orgs().count_documents(doc! { "state": STATE_ACTIVE }),
        )
        .await
    }
}

impl MongoStore {
    /// The create's steps (see the module's comment), without its audit events.
    async fn create_unaudited(&self, new: &NewOrganization) -> Result<Organization, StoreError> {
        let layout = self.layout()?;
        let org = new.organization();
        let slug_key = format!("slug:{}", org.slug);
        let skeleton_key = format!("skeleton:{}", new.name.skeleton());

        let now = self.clock.now();
        if !self.claim(&slug_key, &org.id, now).await? {
            return Err(StoreError::Conflict(Taken::Name));
        }
        self.failpoints.reached("create.after_claim").await;
        // The email needs no claim: accounts are inserted, and the unique index on
        // `admins.email` refuses a second one at insert time on both servers.
        let claimed = self.claim(&skeleton_key, &org.id, now).await;
        if !matches!(claimed, Ok(true)) {
            let _ = self.release(&slug_key, &org.id).await;
            return Err(claimed.err().unwrap_or(StoreError::Conflict(Taken::Name)));
        }

        let org_doc = doc! {
            "_id": &org.id,
            "name": &org.name,
            "slug": &org.slug,
            "skeleton": new.name.skeleton(),
            "collection_name": &org.collection_name,
            "admin_email": &org.admin_email,
            // Its purge looks here for an account the create made before its membership.
            "creator_id": &new.admin_id,
            "created_at": bson_time(org.created_at),
            "updated_at": Bson::Null,
            "state": STATE_CREATING,
            "since": bson_time(now),
        };
        let steps = async {
            self.run("insert organization", self.orgs().insert_one(&org_doc))
                .await?;
            self.failpoints.reached("create.after_organization").await;
            match &new.password_hash {
                Some(hash) => {
                    self.claim_email(org.admin_email.as_str(), &new.admin_id)
                        .await?;
                    self.run(
                        "insert account",
                        self.admins().insert_one(doc! {
                            "_id": &new.admin_id,
                            "email": &org.admin_email,
                            "password_hash": hash,
                            "token_version": 0_i64,
                            "created_at": bson_time(self.clock.now()),
                        }),
                    )
                    .await
                    .map_err(|e| match e {
                        StoreError::Conflict(_) => StoreError::Conflict(Taken::Email),
                        other => other,
                    })?;
                }
                None => {
                    self.account_by_id(&new.admin_id)
                        .await?
                        .ok_or(StoreError::Gone)?;
                }
            }
            self.run(
                "insert membership",
                self.memberships().insert_one(doc! {
                    "_id": membership_key(&org.id, &new.admin_id),
                    "organization_id": &org.id,
                    "account_id": &new.admin_id,
                    "email": &org.admin_email,
                    "role": "owner",
                    "joined_at": bson_time(org.created_at),
                }),
            )
            .await?;
            self.failpoints.reached("create.after_admin").await;
            // In the shared layout the tenant's documents need no collection of their own.
            if layout == TenantLayout::Collection {
                self.create_collection(&org.collection_name).await?;
            }
            self.failpoints.reached("create.after_collection").await;
            // The reconciler may have judged this create abandoned meanwhile (a long store
            // pause): whoever inserts the outcome first decides, commit or abort.
            match self.decide(&org.id, Outcome::Commit).await? {
                Outcome::Commit => {}
                Outcome::Abort => {
                    return Err(StoreError::Unavailable(
                        "the create was interrupted and undone; retry it".into(),
                    ))
                }
            }
            Ok::<_, StoreError>(())
        };
        if let Err(e) = steps.await {
            // Undo now if we can; if the store is unreachable the reconciler does it later.
            if let Err(undo) = self.undo_create(&org_doc).await {
                tracing::warn!(error = %undo, organization_id = %org.id, "undo of failed create deferred to the reconciler");
            }
            return Err(e);
        }
        // Committed: from here the create only goes forward (the reconciler finishes it if
        // this process cannot).
        self.failpoints.reached("create.after_commit").await;
        self.activate(&org.id).await?;
        Ok(org)
    }

    /// Makes a committed create visible, then drops its outcome record (idempotent).
    pub(super) async fn activate(&self, org_id: &str) -> Result<(), StoreError> {
        self.update_if(
            "activate organization",
            &self.orgs(),
            doc! { "_id": org_id, "state": STATE_CREATING },
            doc! { "$set": { "state": STATE_ACTIVE, "since": bson_time(self.clock.now()) } },
        )
        .await?;
        self.release(&format!("outcome:{org_id}"), org_id).await
    }

    /// Drops the collection of a half-created organization only if its slug is still ours.
    pub(super) async fn undo_create(&self, org: &Document) -> Result<(), StoreError> {
        let id = org.get_str("_id").unwrap_or_default();
        let slug = org.get_str("slug").unwrap_or_default();
        let ours = self
            .run(
                "find reservation",
                self.reservations()
                    .find_one(doc! { "_id": format!("slug:{slug}"), "organization_id": id }),
            )
            .await?
            .is_some();
        if !ours {
            // Someone else holds the slug: leave their collection alone.
            let mut org = org.clone();
            org.remove("collection_name");
            return self.purge(&org).await;
        }
        self.purge(org).await
    }

    /// Removes every trace of an organization. Each step is idempotent.
    pub(super) async fn purge(&self, org: &Document) -> Result<(), StoreError> {
        let id = org.get_str("_id").unwrap_or_default().to_owned();
        // First a tombstone, which outlives the organization: documents an insert racing
        // this delete lands after the sweep below are swept by the reconciler once the
        // tombstone is older than the grace period (see `sweep_deleted_tenants`).
        match self
            .run(
                "record deletion",
                self.reservations().insert_one(doc! {
                    "_id": format!("{DELETED_PREFIX}{id}"), "tenant": &id,
                    "created_at": bson_time(self.clock.now()),
                }),
            )
            .await
        {
            Ok(_) | Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
        self.run(
            "delete refresh tokens",
            self.refresh().delete_many(doc! { "organization_id": &id }),
        )
        .await?;
        // Accounts that belong nowhere else go with it (the creator too: a create interrupted
        // before its membership left an account nothing else points at).
        // With each, the email it was made with, to free a claimed email whose account was
        // never made (see `drop_if_unattached`).
        let mut accounts: Vec<(String, Option<String>)> = self
            .all(
                "find memberships",
                &self.memberships(),
                doc! { "organization_id": &id },
            )
            .await?
            .iter()
            .filter_map(|m| {
                let email = m.get_str("email").ok().map(str::to_owned);
                m.get_str("account_id").ok().map(|a| (a.to_owned(), email))
            })
            .collect();
        if let Ok(creator) = org.get_str("creator_id") {
            let email = org.get_str("admin_email").ok().map(str::to_owned);
            accounts.push((creator.to_owned(), email));
        }
        for (account, email) in &accounts {
            self.drop_if_unattached(account, Some(&id), email.as_deref())
                .await?;
        }
        self.run(
            "delete memberships",
            self.memberships()
                .delete_many(doc! { "organization_id": &id }),
        )
        .await?;
        self.run(
            "delete invitations",
            self.invitations()
                .delete_many(doc! { "organization_id": &id }),
        )
        .await?;
        // Keys belong to the organization, not to whoever made them.
        self.run(
            "delete api keys",
            self.api_keys().delete_many(doc! { "organization_id": &id }),
        )
        .await?;
        self.failpoints.reached("delete.after_admin").await;
        // Both layouts, whichever is configured: a delete interrupted during a layout change
        // (or finished by an instance of the other layout) leaves nothing behind.
        for collection in owned_collections(org) {
            self.drop_collection(&collection).await?;
        }
        self.run(
            "delete documents",
            self.tenant_documents()
                .delete_many(doc! { "organization_id": &id }),
        )
        .await?;
        self.failpoints.reached("delete.after_collection").await;
        self.run(
            "delete reservations",
            self.reservations()
                .delete_many(doc! { "organization_id": &id }),
        )
        .await?;
        self.run(
            "delete organization",
            self.orgs().delete_one(doc! { "_id": &id }),
        )
        .await?;
        Ok(())
    }

    pub(super) async fn delete_locked(&self, id: &str) -> Result<bool, StoreError> {
        let marked = self
            .find_and_update_if(
                "mark delete",
                &self.orgs(),
                doc! { "_id": id, "state": { "$in": [STATE_ACTIVE, STATE_DELETING] } },
                doc! { "$set": { "state": STATE_DELETING, "since": bson_time(self.clock.now()) } },
                false,
            )
            .await?;
        let Some(org) = marked else {
            return Ok(false);
        };
        self.failpoints.reached("delete.after_mark").await;
        self.purge(&org).await?;
        // Only the request that turned it from active to deleting deleted it; one that found a
        // delete already under way (the first one's purge frees the lock with the
        // organization's other reservations) finished it, but the answer is the first one's.
        Ok(org.get_str("state") == Ok(STATE_ACTIVE))
    }

    pub(super) async fn active_org(
        &self,
        filter: Document,
    ) -> Result<Option<Organization>, StoreError> {
        let mut filter = filter;
        filter.insert("state", STATE_ACTIVE);
        self.run("find organization", self.orgs().find_one(filter))
            .await?
            .map(|d| org_from_doc(&d))
            .transpose()
    }

    pub(super) async fn account(&self, filter: Document) -> Result<Option<Account>, StoreError> {
        self.run("find account", self.admins().find_one(filter))
            .await?
            .map(|d| account_from_doc(&d))
            .transpose()
    }

    /// Deletes the account, with its refresh tokens and its email's entry, if it has no
    /// membership other than in `leaving` (an account exists only to belong). `claimed`: the
    /// email the account was to be made with, whose entry is freed if the account was never
    /// made (the entry names the account, so another's is never touched). Idempotent.
    pub(super) async fn drop_if_unattached(
        &self,
        account_id: &str,
        leaving: Option<&str>,
        claimed: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut others = doc! { "account_id": account_id };
        if let Some(org) = leaving {
            others.insert("organization_id", doc! { "$ne": org });
        }
        let elsewhere = self
            .run("find memberships", self.memberships().find_one(others))
            .await?
            .is_some();
        if elsewhere {
            return Ok(());
        }
        self.run(
            "delete refresh tokens",
            self.refresh().delete_many(doc! { "admin_id": account_id }),
        )
        .await?;
        // The deleted document names the email to free: no read before the delete.
        let account = self
            .run(
                "delete account",
                self.admins()
                    .find_one_and_delete(doc! { "_id": account_id }),
            )
            .await?;
        // After the account: an account never lacks its entry.
        let email = account.as_ref().and_then(|a| a.get_str("email").ok());
        if let Some(email) = email.or(claimed) {
            self.release_email(email, account_id).await?;
        }
        Ok(())
    }
}
