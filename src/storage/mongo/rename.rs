//! Renames on MongoDB: claim the new slug and skeleton, mark the organization with the
//! `pending` name, move the tenant data if the layout keeps it under the name, then apply the
//! name and release the old claims. Every step after the mark is idempotent, so the
//! reconciler can finish a rename any instance started.

use chrono::{DateTime, Utc};
use mongodb::bson::{doc, Bson, Document};

use super::codec::{bson_time, org_from_doc};
use super::{MongoStore, STATE_ACTIVE};
use crate::domain::{OrgName, Organization, TenantLayout};
use crate::storage::{StoreError, Taken};

impl MongoStore {
    /// Moves a marked rename forward to completion. Idempotent.
    pub(super) async fn finish_rename(
        &self,
        org: &Document,
    ) -> Result<Option<Document>, StoreError> {
        let id = org.get_str("_id").unwrap_or_default().to_owned();
        let Ok(pending) = org.get_document("pending") else {
            return Ok(Some(org.clone()));
        };
        let old_slug = org.get_str("slug").unwrap_or_default().to_owned();
        let old_skeleton = org.get_str("skeleton").ok().map(str::to_owned);
        let new_skeleton = pending.get_str("skeleton").ok().map(str::to_owned);
        let from = org
            .get_str("collection_name")
            .unwrap_or_default()
            .to_owned();
        let to = pending
            .get_str("collection_name")
            .unwrap_or_default()
            .to_owned();
        // In the shared layout documents are keyed by the organization's id: nothing moves.
        if from != to && self.layout()? == TenantLayout::Collection {
            self.rename_collection(&from, &to).await?;
        }
        self.failpoints.reached("rename.after_collection").await;
        let updated = self.find_and_update_if(
                "finish rename",
                &self.orgs(),
                doc! { "_id": &id, "state": STATE_ACTIVE, "pending": { "$exists": true } },
                doc! {
                            "$set": {
                                "name": pending.get_str("name").unwrap_or_default(),
                                "slug": pending.get_str("slug").unwrap_or_default(),
                                "skeleton": new_skeleton.as_deref().map_or(Bson::Null, |s| Bson::String(s.to_owned())),
                                "collection_name": &to,
                                "updated_at": pending.get("updated_at").or_else(|| pending.get("at")).cloned().unwrap_or(Bson::Null),
                            },
                            "$unset": { "pending": "" },
                        },
                true,
            )
            .await?;
        self.failpoints.reached("rename.after_update").await;
        if pending.get_str("slug").unwrap_or_default() != old_slug {
            self.release(&format!("slug:{old_slug}"), &id).await?;
        }
        if let Some(old) = old_skeleton.filter(|old| Some(old) != new_skeleton.as_ref()) {
            self.release(&format!("skeleton:{old}"), &id).await?;
        }
        Ok(updated)
    }

    pub(super) async fn rename_locked(
        &self,
        id: &str,
        new_name: &OrgName,
        at: DateTime<Utc>,
    ) -> Result<Organization, StoreError> {
        let current = self
            .run(
                "find organization",
                self.orgs()
                    .find_one(doc! { "_id": id, "state": STATE_ACTIVE }),
            )
            .await?
            .ok_or(StoreError::Gone)?;
        if current.get_document("pending").is_ok() {
            // An earlier rename of this organization was interrupted: finish it first.
            self.finish_rename(&current).await?;
            return Box::pin(self.rename_locked(id, new_name, at)).await;
        }
        let old = org_from_doc(&current)?;

        if old.slug == new_name.slug() {
            let updated = self
                .find_and_update_if(
                    "rename organization",
                    &self.orgs(),
                    doc! { "_id": id, "state": STATE_ACTIVE },
                    doc! { "$set": { "name": new_name.as_str(), "updated_at": bson_time(at) } },
                    true,
                )
                .await?
                .ok_or(StoreError::Gone)?;
            return org_from_doc(&updated);
        }

        let now = self.clock.now();
        let new_key = format!("slug:{}", new_name.slug());
        if !self.claim(&new_key, id, now).await? {
            return Err(StoreError::Conflict(Taken::Name));
        }
        // A look-alike of another organization's name is taken too (a look-alike of our own
        // current name is fine: the claim is already ours).
        let skeleton_key = format!("skeleton:{}", new_name.skeleton());
        match self.claim(&skeleton_key, id, now).await {
            Ok(true) => {}
            other => {
                let _ = self.release(&new_key, id).await;
                return Err(other.err().unwrap_or(StoreError::Conflict(Taken::Name)));
            }
        }
        let mut new_keys = vec![new_key];
        if current.get_str("skeleton") != Ok(new_name.skeleton()) {
            new_keys.push(skeleton_key);
        }
        let release_new = || async {
            for key in &new_keys {
                let _ = self.release(key, id).await;
            }
        };
        self.failpoints.reached("rename.after_claim").await;
        let marked = self
            .find_and_update_if(
                "mark rename",
                &self.orgs(),
                doc! { "_id": id, "state": STATE_ACTIVE, "pending": { "$exists": false } },
                doc! { "$set": { "pending": {
                    "name": new_name.as_str(),
                    "slug": new_name.slug(),
                    "skeleton": new_name.skeleton(),
                    "collection_name": new_name.collection_name(),
                    "at": bson_time(self.clock.now()),
                    "updated_at": bson_time(at),
                } } },
                true,
            )
            .await;
        let marked = match marked {
            Ok(Some(doc)) => doc,
            Ok(None) => {
                release_new().await;
                return Err(StoreError::Gone);
            }
            Err(e) => {
                release_new().await;
                return Err(e);
            }
        };
        self.failpoints.reached("rename.after_mark").await;
        let updated = self.finish_rename(&marked).await?.ok_or(StoreError::Gone)?;
        org_from_doc(&updated)
    }
}
