//! Tenant data on MongoDB: the tenant collections (`org_<slug>`, in the collection layout) and
//! the documents, in whichever layout the database records (see `layout.rs`).

use async_trait::async_trait;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, Bson, Document};

use super::codec::{NAMESPACE_EXISTS, NAMESPACE_NOT_FOUND};
use super::MongoStore;
use crate::domain::{is_tenant_collection, Organization, TenantLayout};
use crate::storage::{StoreError, TenantData};

impl MongoStore {
    /// Creates the collection; one that exists already is fine (a retried step).
    pub(super) async fn create_collection(&self, name: &str) -> Result<(), StoreError> {
        self.run_tolerating(
            "create collection",
            &[NAMESPACE_EXISTS],
            self.db.create_collection(name),
        )
        .await
        .map(drop)
    }

    /// Drops a tenant collection; one already gone is fine (a retried step).
    pub(super) async fn drop_collection(&self, name: &str) -> Result<(), StoreError> {
        if !is_tenant_collection(name) {
            return Err(StoreError::Backend(format!("refusing to drop {name:?}")));
        }
        self.run_tolerating(
            "drop collection",
            &[NAMESPACE_NOT_FOUND],
            self.db.collection::<Document>(name).drop(),
        )
        .await
        .map(drop)
    }

    /// `renameCollection`, idempotent: a source already gone with the target present is done.
    pub(super) async fn rename_collection(&self, from: &str, to: &str) -> Result<(), StoreError> {
        let db = self.db.name();
        let command = doc! {
            "renameCollection": format!("{db}.{from}"),
            "to": format!("{db}.{to}"),
        };
        let admin = self.client.database("admin");
        let renamed = self
            .run_tolerating(
                "rename collection",
                &[NAMESPACE_NOT_FOUND],
                admin.run_command(command),
            )
            .await?;
        if renamed.is_none() && !self.tenant_collections().await?.iter().any(|c| c == to) {
            // Neither exists: recreate the target so the organization has its collection.
            self.create_collection(to).await?;
        }
        Ok(())
    }

    pub(super) async fn tenant_collections(&self) -> Result<Vec<String>, StoreError> {
        let names = self
            .run("list collections", self.db.list_collection_names())
            .await?;
        Ok(names
            .into_iter()
            .filter(|n| is_tenant_collection(n))
            .collect())
    }
}

/// The tenant collections an organization document refers to (current and pending).
pub(super) fn owned_collections(org: &Document) -> Vec<String> {
    let mut names: Vec<String> = org
        .get_str("collection_name")
        .ok()
        .map(str::to_owned)
        .into_iter()
        .collect();
    if let Ok(pending) = org.get_document("pending") {
        if let Ok(to) = pending.get_str("collection_name") {
            if !names.iter().any(|n| n == to) {
                names.push(to.to_owned());
            }
        }
    }
    names
}

impl MongoStore {
    /// After a shared-layout insert: if the organization stopped being active meanwhile (a
    /// delete raced the insert, and its purge may have run before these documents landed),
    /// takes them out again and answers `Gone`. A crash before this check is covered by the
    /// deletion's tombstone.
    pub(super) async fn confirm_tenant_alive(
        &self,
        org: &Organization,
        inserted: &[Document],
    ) -> Result<(), StoreError> {
        let alive = self
            .run(
                "find organization",
                self.orgs()
                    .find_one(doc! { "_id": &org.id, "state": super::STATE_ACTIVE }),
            )
            .await?
            .is_some();
        if alive {
            return Ok(());
        }
        let ids: Vec<Bson> = inserted
            .iter()
            .filter_map(|d| d.get("_id").cloned())
            .collect();
        self.run_scan(
            "take back documents",
            self.tenant_documents()
                .delete_many(doc! { "_id": { "$in": ids } }),
        )
        .await?;
        Err(StoreError::Gone)
    }
}

#[async_trait]
impl TenantData for MongoStore {
    async fn insert_tenant_documents(
        &self,
        org: &Organization,
        documents: Vec<serde_json::Value>,
    ) -> Result<u64, StoreError> {
        // The documents API's record shape, in both layouts (see `documents.rs`).
        let now = mongodb::bson::DateTime::from_millis(chrono::Utc::now().timestamp_millis());
        let docs = documents
            .into_iter()
            .map(|v| match mongodb::bson::to_bson(&v) {
                Ok(Bson::Document(d)) => Ok(d),
                Ok(other) => Ok(doc! { "value": other }),
                Err(e) => Err(StoreError::Backend(format!("document: {e}"))),
            })
            .map(|d| {
                d.map(|d| {
                    doc! { "_id": ObjectId::new(), "document": d, "version": 1_i64, "created_at": now, "updated_at": now }
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let layout = self.layout()?;
        let (collection, docs) = match layout {
            TenantLayout::Collection => {
                (self.db.collection::<Document>(&org.collection_name), docs)
            }
            TenantLayout::Shared => (
                self.tenant_documents(),
                docs.into_iter()
                    .map(|mut d| {
                        d.insert("organization_id", &org.id);
                        d
                    })
                    .collect(),
            ),
        };
        let mut inserted = 0;
        for chunk in docs.chunks(10_000) {
            let result = self
                .run_scan("insert documents", collection.insert_many(chunk.to_vec()))
                .await?;
            inserted += result.inserted_ids.len() as u64;
        }
        if layout == TenantLayout::Shared {
            self.confirm_tenant_alive(org, &docs).await?;
        }
        Ok(inserted)
    }

    async fn count_tenant_documents(&self, org: &Organization) -> Result<u64, StoreError> {
        // A full count scans the tenant (FerretDB has no metadata count).
        let (collection, filter) = match self.layout()? {
            TenantLayout::Collection => (
                self.db.collection::<Document>(&org.collection_name),
                doc! {},
            ),
            TenantLayout::Shared => (self.tenant_documents(), doc! { "organization_id": &org.id }),
        };
        self.run_scan("count documents", collection.count_documents(filter))
            .await
    }
}
