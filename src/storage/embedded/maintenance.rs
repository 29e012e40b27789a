//! Start-up migration, health and repair on the embedded store.

use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use rusqlite::OptionalExtension;

use super::codec::backend;
use super::schema::{
    add_document_versions, add_skeletons, adopt_admins, fold_tenant_tables, set_aside_admins,
    tenant_tables, SCHEMA,
};
use super::{idempotency, EmbeddedStore};
use crate::domain::TenantLayout;
use crate::storage::{
    LayoutChange, Maintenance, ReconcileReport, StoreError, MAX_LOGIN_WINDOW_SECONDS,
};

#[async_trait]
impl Maintenance for EmbeddedStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        self.write(|tx, _| {
            let before_teams = set_aside_admins(tx)?;
            tx.execute_batch(SCHEMA).map_err(backend)?;
            if before_teams {
                adopt_admins(tx)?;
            }
            add_skeletons(tx)?;
            add_document_versions(tx)?;
            fold_tenant_tables(tx).map(drop)
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        // A real read of the data (a corrupt file fails here, where `SELECT 1` would not) and
        // a write lock taken and given back (a database another process holds locked answers
        // every write with 503, so health must say so too); both within the store timeout.
        let probe = async {
            self.read(|conn| {
                conn.prepare_cached("SELECT id FROM organizations ORDER BY id LIMIT 1")
                    .and_then(|mut stmt| stmt.query_row([], |_| Ok(())).optional())
                    .map(drop)
                    .map_err(backend)
            })
            .await?;
            self.write(|_, _| Ok(())).await
        };
        tokio::time::timeout(self.timeout, probe)
            .await
            .map_err(|_| StoreError::Unavailable("health probe timed out".into()))?
    }

    async fn reconcile(&self, _grace: Duration) -> Result<ReconcileReport, StoreError> {
        // Transactions leave nothing half-made; what is left to do is expiring throttle records.
        let cutoff = Utc::now().timestamp() - MAX_LOGIN_WINDOW_SECONDS;
        self.write(move |tx, _| {
            let mut report = ReconcileReport::default();
            tx.execute(
                "DELETE FROM refresh_tokens WHERE expires_at < ?1",
                [Utc::now().timestamp()],
            )
            .map_err(backend)?;
            // A revoked chain's tokens all expire within the longest refresh lifetime (90 days).
            tx.execute(
                "DELETE FROM revoked_families WHERE revoked_at < ?1",
                [Utc::now().timestamp() - 90 * 86_400],
            )
            .map_err(backend)?;
            tx.execute(
                "DELETE FROM login_attempts WHERE window_start < ?1",
                [cutoff],
            )
            .map_err(backend)?;
            idempotency::expire(tx)?;
            // Only a file copied in from an older version behind a running service has
            // per-tenant tables left; fold them in as start-up would.
            let folded = fold_tenant_tables(tx)?;
            if folded > 0 {
                report.repaired.push(format!(
                    "folded {folded} tenant tables into tenant_documents"
                ));
            }
            Ok(report)
        })
        .await
    }

    async fn consistency_problems(&self) -> Result<Vec<String>, StoreError> {
        self.read(|conn| {
            let mut problems = Vec::new();
            let count = |sql: &str| -> Result<i64, StoreError> {
                conn.query_row(sql, [], |r| r.get(0)).map_err(backend)
            };
            let checks = [
                (
                    "SELECT COUNT(*) FROM organizations o WHERE NOT EXISTS (SELECT 1 FROM memberships m WHERE m.organization_id = o.id AND m.role = 'owner')",
                    "organizations without an owner",
                ),
                (
                    "SELECT COUNT(*) FROM accounts a WHERE NOT EXISTS (SELECT 1 FROM memberships m WHERE m.account_id = a.id)",
                    "accounts without a membership",
                ),
                (
                    "SELECT COUNT(*) FROM memberships WHERE organization_id NOT IN (SELECT id FROM organizations) OR account_id NOT IN (SELECT id FROM accounts)",
                    "memberships without their account or organization",
                ),
                (
                    "SELECT COUNT(*) FROM invitations i WHERE i.status = 'accepted' AND i.accepted_by IS NOT NULL AND NOT EXISTS (SELECT 1 FROM memberships m WHERE m.organization_id = i.organization_id AND m.account_id = i.accepted_by)",
                    "accepted invitations without their membership",
                ),
                (
                    "SELECT COUNT(*) FROM api_keys WHERE organization_id NOT IN (SELECT id FROM organizations)",
                    "API keys of no organization",
                ),
            ];
            for (sql, what) in checks {
                let n = count(sql)?;
                if n > 0 {
                    problems.push(format!("{n} {what}"));
                }
            }
            let orphan_documents = count(
                "SELECT COUNT(*) FROM tenant_documents WHERE organization_id NOT IN (SELECT id FROM organizations)",
            )?;
            if orphan_documents > 0 {
                problems.push(format!("{orphan_documents} documents of no organization"));
            }
            for table in tenant_tables(conn)? {
                problems.push(format!("per-tenant table {table} not folded in"));
            }
            Ok(problems)
        })
        .await
    }

    async fn change_tenant_layout(&self, to: TenantLayout) -> Result<LayoutChange, StoreError> {
        // One table for every tenant is the embedded store's only layout: `shared`.
        match to {
            TenantLayout::Shared => Ok(LayoutChange {
                from: TenantLayout::Shared,
                to,
                tenants: 0,
                documents: 0,
            }),
            TenantLayout::Collection => Err(StoreError::Refused(
                "the embedded store keeps every tenant's documents in one table; the collection layout is MongoDB's".into(),
            )),
        }
    }
}
