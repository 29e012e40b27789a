//! The organizations' own documents on the embedded store: one `tenant_documents` table for
//! every tenant, keyed by `(organization_id, id)`. The organization's immutable id, not its
//! name, is the key, so a rename touches no document; ids are ObjectIds in hex, which sort by
//! creation time.

use async_trait::async_trait;
use rusqlite::params;

use super::codec::{backend, is_foreign_key};
use super::EmbeddedStore;
use crate::domain::{new_id, Organization};
use crate::storage::{StoreError, TenantData};

#[async_trait]
impl TenantData for EmbeddedStore {
    async fn insert_tenant_documents(
        &self,
        org: &Organization,
        documents: Vec<serde_json::Value>,
    ) -> Result<u64, StoreError> {
        let org_id = org.id.clone();
        self.write(move |tx, _| {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO tenant_documents (organization_id, id, document) VALUES (?1, ?2, ?3)",
                )
                .map_err(backend)?;
            for doc in &documents {
                // The foreign key refuses documents of an organization deleted meanwhile.
                stmt.execute(params![org_id, new_id(), doc.to_string()])
                    .map_err(|e| {
                        if is_foreign_key(&e) {
                            StoreError::Gone
                        } else {
                            backend(e)
                        }
                    })?;
            }
            Ok(documents.len() as u64)
        })
        .await
    }

    async fn count_tenant_documents(&self, org: &Organization) -> Result<u64, StoreError> {
        let org_id = org.id.clone();
        self.read(move |conn| {
            conn.prepare_cached("SELECT COUNT(*) FROM tenant_documents WHERE organization_id = ?1")
                .and_then(|mut stmt| stmt.query_row([org_id], |r| r.get::<_, i64>(0)))
                .map(|n| n.max(0) as u64)
                .map_err(backend)
        })
        .await
    }
}
