//! Organizations and their accounts on the embedded store. Each operation is one transaction,
//! so the crash points inside it (shared with MongoDB's step-by-step operations) can only show
//! that nothing of an interrupted operation survives.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::params;

use super::audit::append;
use super::codec::{
    account_from_row, backend, conflict_or_backend, org_by_id, org_from_row, query_one, ts,
    ACCOUNT_COLUMNS, ORG_COLUMNS,
};
use super::EmbeddedStore;
use crate::domain::{Account, NewEvent, NewOrganization, OrgName, Organization};
use crate::storage::{Organizations, StoreError};

#[async_trait]
impl Organizations for EmbeddedStore {
    async fn create_organization(
        &self,
        new: &NewOrganization,
        events: &[NewEvent],
    ) -> Result<Organization, StoreError> {
        let org = new.organization();
        let events = events.to_vec();
        let admin_id = new.admin_id.clone();
        let hash = new.password_hash.clone();
        let skeleton = new.name.skeleton().to_owned();
        let created = org.clone();
        self.write(move |tx, fp| {
            tx.execute(
                "INSERT INTO organizations (id, name, slug, collection_name, admin_email, created_at, skeleton) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![org.id, org.name, org.slug, org.collection_name, org.admin_email, ts(org.created_at), skeleton],
            )
            .map_err(conflict_or_backend)?;
            fp.hit("create.after_claim");
            fp.hit("create.after_organization");
            match &hash {
                Some(hash) => {
                    tx.execute(
                        "INSERT INTO accounts (id, email, password_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
                        params![admin_id, org.admin_email, hash, ts(org.created_at)],
                    )
                    .map_err(conflict_or_backend)?;
                }
                None => {
                    // The existing account re-authenticated; it may have been deleted since.
                    let exists: bool = tx
                        .query_row(
                            "SELECT EXISTS(SELECT 1 FROM accounts WHERE id = ?1)",
                            [&admin_id],
                            |r| r.get(0),
                        )
                        .map_err(backend)?;
                    if !exists {
                        return Err(StoreError::Gone);
                    }
                }
            }
            tx.execute(
                "INSERT INTO memberships (organization_id, account_id, role, joined_at) VALUES (?1, ?2, 'owner', ?3)",
                params![org.id, admin_id, ts(org.created_at)],
            )
            .map_err(conflict_or_backend)?;
            fp.hit("create.after_admin");
            append(tx, &events)?;
            // The tenant's documents live in the shared `tenant_documents` table: nothing to
            // create, and the schema stays the same size however many tenants there are.
            fp.hit("create.after_collection");
            fp.hit("create.after_commit");
            Ok(())
        })
        .await?;
        Ok(created)
    }

    async fn organization_by_slug(&self, slug: &str) -> Result<Option<Organization>, StoreError> {
        let slug = slug.to_owned();
        self.read(move |conn| {
            query_one(
                conn,
                &format!("SELECT {ORG_COLUMNS} FROM organizations WHERE slug = ?1"),
                &slug,
                org_from_row,
            )
        })
        .await
    }

    async fn organization_by_id(&self, id: &str) -> Result<Option<Organization>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| org_by_id(conn, &id)).await
    }

    async fn account_by_email(&self, email: &str) -> Result<Option<Account>, StoreError> {
        let email = email.to_owned();
        self.read(move |conn| {
            query_one(
                conn,
                &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE email = ?1"),
                &email,
                account_from_row,
            )
        })
        .await
    }

    async fn account_by_id(&self, id: &str) -> Result<Option<Account>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| {
            query_one(
                conn,
                &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?1"),
                &id,
                account_from_row,
            )
        })
        .await
    }

    async fn rename_organization(
        &self,
        id: &str,
        new_name: &OrgName,
        at: DateTime<Utc>,
        events: &[NewEvent],
    ) -> Result<Organization, StoreError> {
        let id = id.to_owned();
        let new_name = new_name.clone();
        let events = events.to_vec();
        self.write(move |tx, fp| {
            org_by_id(tx, &id)?.ok_or(StoreError::Gone)?;
            let new_collection = new_name.collection_name();
            tx.execute(
                "UPDATE organizations SET name = ?2, slug = ?3, collection_name = ?4, updated_at = ?5, skeleton = ?6 WHERE id = ?1",
                params![id, new_name.as_str(), new_name.slug(), new_collection, ts(at), new_name.skeleton()],
            )
            .map_err(conflict_or_backend)?;
            fp.hit("rename.after_claim");
            fp.hit("rename.after_mark");
            // Documents are keyed by the organization's id, which a rename keeps.
            fp.hit("rename.after_collection");
            append(tx, &events)?;
            fp.hit("audit.after_change");
            fp.hit("rename.after_update");
            org_by_id(tx, &id)?.ok_or(StoreError::Gone)
        })
        .await
    }

    async fn delete_organization(&self, id: &str, events: &[NewEvent]) -> Result<bool, StoreError> {
        let id = id.to_owned();
        let events = events.to_vec();
        self.write(move |tx, fp| {
            if org_by_id(tx, &id)?.is_none() {
                return Ok(false);
            }
            fp.hit("delete.after_mark");
            // Accounts that belong nowhere else go with it (their refresh tokens and
            // memberships by cascade); the others keep working in their other organizations.
            tx.execute(
                "DELETE FROM accounts WHERE id IN (SELECT account_id FROM memberships WHERE organization_id = ?1)
                 AND NOT EXISTS (SELECT 1 FROM memberships m WHERE m.account_id = accounts.id AND m.organization_id != ?1)",
                [&id],
            )
            .map_err(backend)?;
            tx.execute("DELETE FROM refresh_tokens WHERE organization_id = ?1", [&id])
                .map_err(backend)?;
            tx.execute("DELETE FROM memberships WHERE organization_id = ?1", [&id])
                .map_err(backend)?;
            tx.execute("DELETE FROM invitations WHERE organization_id = ?1", [&id])
                .map_err(backend)?;
            // Keys belong to the organization, not to whoever made them.
            tx.execute("DELETE FROM api_keys WHERE organization_id = ?1", [&id])
                .map_err(backend)?;
            fp.hit("delete.after_admin");
            // In the same transaction as the organization: a crash cannot leave documents of
            // a deleted tenant, nor a tenant without some of its documents. A tenant of a
            // million documents holds the writer for seconds; deletes are rare, and that is
            // the price of never exposing a half-deleted tenant.
            tx.execute(
                "DELETE FROM tenant_documents WHERE organization_id = ?1",
                [&id],
            )
            .map_err(backend)?;
            fp.hit("delete.after_collection");
            tx.execute("DELETE FROM organizations WHERE id = ?1", [&id])
                .map_err(backend)?;
            // The organization's chain outlives it (until pruned): its last event says why.
            append(tx, &events)?;
            Ok(true)
        })
        .await
    }

    async fn count_organizations(&self) -> Result<u64, StoreError> {
        self.read(|conn| {
            conn.query_row("SELECT COUNT(*) FROM organizations", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n.max(0) as u64)
            .map_err(backend)
        })
        .await
    }
}
