//! API keys on MongoDB: one document per key in `api_keys`, found by its `prefix` (unique
//! index). A create holds the organization's operation lock, so the organization is active
//! and under its key quota when the key is inserted; a delete (which holds the same lock)
//! removes the keys with the organization. A key whose create outlived its lock while a delete
//! took over is harmless (the guard reads the organization on every request) and is swept by
//! the reconciler once older than the grace period.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::bson::{doc, DateTime as BsonDateTime, Document};
use mongodb::Collection;

use super::audit_outbox::Check;
use super::codec::{bson_time, chrono_time, field_err};
use super::reconcile::Owners;
use super::{MongoStore, STATE_ACTIVE};
use crate::domain::{ApiKey, MemberRole, NewEvent, StoredApiKey};
use crate::storage::{ApiKeys, Limit, ReconcileReport, StoreError, Taken};

pub(super) const API_KEYS: &str = "api_keys";

fn key_from_doc(d: &Document) -> Result<StoredApiKey, StoreError> {
    let s = |k: &str| d.get_str(k).map(str::to_owned).map_err(|_| field_err(k));
    let time = |k: &str| d.get_datetime(k).ok().map(|t| chrono_time(*t));
    Ok(StoredApiKey {
        key: ApiKey {
            id: s("_id")?,
            organization_id: s("organization_id")?,
            name: s("name")?,
            role: MemberRole::parse(&s("role")?).map_err(|_| field_err("role"))?,
            prefix: s("prefix")?,
            created_at: time("created_at").ok_or_else(|| field_err("created_at"))?,
            expires_at: time("expires_at"),
            created_by: s("created_by")?,
            last_used_at: time("last_used_at"),
        },
        hash: s("key_hash")?,
    })
}

impl MongoStore {
    pub(super) fn api_keys(&self) -> Collection<Document> {
        self.db.collection(API_KEYS)
    }

    async fn create_key_locked(
        &self,
        key: &ApiKey,
        hash: &str,
        max_keys: u64,
    ) -> Result<(), StoreError> {
        let active = self
            .run(
                "find organization",
                self.orgs()
                    .find_one(doc! { "_id": &key.organization_id, "state": STATE_ACTIVE }),
            )
            .await?
            .is_some();
        if !active {
            return Err(StoreError::Gone);
        }
        let held = self
            .run(
                "count api keys",
                self.api_keys()
                    .count_documents(doc! { "organization_id": &key.organization_id }),
            )
            .await?;
        if held >= max_keys {
            return Err(StoreError::Quota(Limit::ApiKeys));
        }
        let mut record = doc! {
            "_id": &key.id,
            "organization_id": &key.organization_id,
            "name": &key.name,
            "role": key.role.as_str(),
            "prefix": &key.prefix,
            "key_hash": hash,
            "created_at": bson_time(key.created_at),
            "created_by": &key.created_by,
        };
        if let Some(end) = key.expires_at {
            record.insert("expires_at", bson_time(end));
        }
        match self
            .run("insert api key", self.api_keys().insert_one(record))
            .await
        {
            Ok(_) => Ok(()),
            // The only unique values are the random id and prefix.
            Err(StoreError::Conflict(_)) => Err(StoreError::Conflict(Taken::KeyPrefix)),
            Err(e) => Err(e),
        }
    }

    /// Keys of organizations that no longer exist (a create that outlived its lock while a
    /// delete took over), once older than the grace period.
    pub(super) async fn sweep_api_keys(
        &self,
        owners: &Owners,
        cutoff: BsonDateTime,
        report: &mut ReconcileReport,
    ) -> Result<(), StoreError> {
        let swept = self
            .sweep(
                "delete orphan api keys",
                &self.api_keys(),
                doc! { "created_at": { "$lt": cutoff } },
                doc! { "organization_id": 1 },
                |key| !owners.has(key.get_str("organization_id").unwrap_or_default()),
            )
            .await?;
        if swept > 0 {
            report
                .repaired
                .push(format!("deleted {swept} API keys of deleted organizations"));
        }
        Ok(())
    }

    /// Keys whose organization is not among `orgs` (for the consistency check).
    pub(super) async fn api_key_problems(
        &self,
        orgs: &[Document],
    ) -> Result<Vec<String>, StoreError> {
        let org_ids: Vec<&str> = orgs.iter().filter_map(|o| o.get_str("_id").ok()).collect();
        let orphans = self
            .run(
                "find orphan api keys",
                self.api_keys()
                    .count_documents(doc! { "organization_id": { "$nin": &org_ids } }),
            )
            .await?;
        Ok((orphans > 0)
            .then(|| format!("{orphans} API keys of no organization"))
            .into_iter()
            .collect())
    }
}

#[async_trait]
impl ApiKeys for MongoStore {
    async fn create_api_key(
        &self,
        key: &ApiKey,
        hash: &str,
        max_keys: u64,
        events: &[NewEvent],
    ) -> Result<(), StoreError> {
        let check = Check::KeyExists { id: key.id.clone() };
        let create = async {
            let lock = self.lock(&key.organization_id).await?;
            let result = self.create_key_locked(key, hash, max_keys).await;
            lock.release().await;
            result
        };
        self.audited(events, check, create, |_| true).await
    }

    async fn list_api_keys(&self, org_id: &str) -> Result<Vec<ApiKey>, StoreError> {
        let docs: Vec<Document> = self
            .run("list api keys", async {
                self.api_keys()
                    .find(doc! { "organization_id": org_id })
                    .sort(doc! { "created_at": 1, "_id": 1 })
                    .await?
                    .try_collect()
                    .await
            })
            .await?;
        docs.iter()
            .map(|d| key_from_doc(d).map(|s| s.key))
            .collect()
    }

    async fn revoke_api_key(
        &self,
        org_id: &str,
        id: &str,
        events: &[NewEvent],
    ) -> Result<bool, StoreError> {
        let check = Check::KeyGone { id: id.to_owned() };
        let revoke = async {
            self.delete_if(
                "revoke api key",
                &self.api_keys(),
                doc! { "_id": id, "organization_id": org_id },
            )
            .await
        };
        self.audited(events, check, revoke, |revoked| *revoked)
            .await
    }

    async fn api_key_by_prefix(&self, prefix: &str) -> Result<Option<StoredApiKey>, StoreError> {
        self.run(
            "find api key",
            self.api_keys().find_one(doc! { "prefix": prefix }),
        )
        .await?
        .as_ref()
        .map(key_from_doc)
        .transpose()
    }

    async fn touch_api_key(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        // `$max`: a slower instance's older time never replaces a newer one.
        self.run(
            "touch api key",
            self.api_keys().update_one(
                doc! { "_id": id },
                doc! { "$max": { "last_used_at": bson_time(at) } },
            ),
        )
        .await
        .map(drop)
    }
}
