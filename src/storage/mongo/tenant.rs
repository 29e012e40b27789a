//! Tenant data on MongoDB: the tenant collections (`org_<slug>`, in the collection layout) and
//! the documents, in whichever layout the database records (see `layout.rs`).

use std::future::IntoFuture;

use async_trait::async_trait;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, Bson, Document};

use super::codec::{translate, NAMESPACE_EXISTS, NAMESPACE_NOT_FOUND};
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

#[async_trait]
impl TenantData for MongoStore {
    async fn insert_tenant_documents(
        &self,
        org: &Organization,
        documents: Vec<serde_json::Value>,
    ) -> Result<u64, StoreError> {
        let docs = documents
            .into_iter()
            .map(|v| match mongodb::bson::to_bson(&v) {
                Ok(Bson::Document(d)) => Ok(d),
                Ok(other) => Ok(doc! { "value": other }),
                Err(e) => Err(StoreError::Backend(format!("document: {e}"))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (collection, docs) = match self.layout()? {
            TenantLayout::Collection => (self.db.collection::<Document>(&org.collection_name), docs),
            TenantLayout::Shared => (
                self.tenant_documents(),
                docs.into_iter()
                    .map(|d| doc! { "_id": ObjectId::new(), "organization_id": &org.id, "document": d })
                    .collect(),
            ),
        };
        let mut inserted = 0;
        for chunk in docs.chunks(10_000) {
            let result =
                tokio::time::timeout(self.timeout * 10, collection.insert_many(chunk.to_vec()))
                    .await
                    .map_err(|_| StoreError::Unavailable("insert documents: timed out".into()))?
                    .map_err(|e| translate("insert documents", &e))?;
            inserted += result.inserted_ids.len() as u64;
        }
        Ok(inserted)
    }

    async fn count_tenant_documents(&self, org: &Organization) -> Result<u64, StoreError> {
        // A full count scans the tenant (FerretDB has no metadata count): like a bulk insert it
        // gets ten store timeouts, not one.
        let (collection, filter) = match self.layout()? {
            TenantLayout::Collection => (
                self.db.collection::<Document>(&org.collection_name),
                doc! {},
            ),
            TenantLayout::Shared => (self.tenant_documents(), doc! { "organization_id": &org.id }),
        };
        tokio::time::timeout(
            self.timeout * 10,
            collection.count_documents(filter).into_future(),
        )
        .await
        .map_err(|_| StoreError::Unavailable("count documents: timed out".into()))?
        .map_err(|e| translate("count documents", &e))
    }
}
