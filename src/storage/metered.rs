//! A [`Store`] decorator that times every operation and counts failures, so both adapters are
//! measured the same way in one place.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{
    AttemptWindow, IdempotencyClaim, ReconcileReport, RefreshSpend, RefreshToken, Store, StoreError,
};
use crate::domain::{Admin, NewOrganization, OrgName, Organization};

/// Wraps a store with metrics.
pub struct MeteredStore(pub Arc<dyn Store>);

impl MeteredStore {
    async fn measure<T>(
        &self,
        operation: &'static str,
        fut: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let result = fut.await;
        let store = self.0.kind();
        let outcome = match &result {
            Ok(_) => "ok",
            Err(StoreError::Conflict(_) | StoreError::NotFound | StoreError::Busy) => "rejected",
            Err(StoreError::Unavailable(_)) => "unavailable",
            Err(StoreError::Backend(_)) => "error",
        };
        metrics::histogram!("store_operation_duration_seconds", "store" => store, "operation" => operation, "outcome" => outcome)
            .record(started.elapsed().as_secs_f64());
        if matches!(outcome, "unavailable" | "error") {
            metrics::counter!("store_errors_total", "store" => store, "operation" => operation, "kind" => outcome)
                .increment(1);
        }
        result
    }
}

#[async_trait]
impl Store for MeteredStore {
    fn kind(&self) -> &'static str {
        self.0.kind()
    }
    async fn migrate(&self) -> Result<(), StoreError> {
        self.measure("migrate", self.0.migrate()).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.measure("ping", self.0.ping()).await
    }
    async fn close(&self) {
        self.0.close().await;
    }
    async fn begin_idempotent(
        &self,
        scope: &str,
        fingerprint: &str,
        running_ttl: Duration,
    ) -> Result<IdempotencyClaim, StoreError> {
        self.measure(
            "begin_idempotent",
            self.0.begin_idempotent(scope, fingerprint, running_ttl),
        )
        .await
    }
    async fn finish_idempotent(&self, scope: &str, sealed: &[u8]) -> Result<(), StoreError> {
        self.measure("finish_idempotent", self.0.finish_idempotent(scope, sealed))
            .await
    }
    async fn abandon_idempotent(&self, scope: &str) -> Result<(), StoreError> {
        self.measure("abandon_idempotent", self.0.abandon_idempotent(scope))
            .await
    }
    async fn upgrade_password_hash(
        &self,
        admin_id: &str,
        old_hash: &str,
        new_hash: &str,
    ) -> Result<bool, StoreError> {
        self.measure(
            "upgrade_password_hash",
            self.0.upgrade_password_hash(admin_id, old_hash, new_hash),
        )
        .await
    }
    async fn create_organization(&self, new: &NewOrganization) -> Result<Organization, StoreError> {
        self.measure("create_organization", self.0.create_organization(new))
            .await
    }
    async fn organization_by_slug(&self, slug: &str) -> Result<Option<Organization>, StoreError> {
        self.measure("organization_by_slug", self.0.organization_by_slug(slug))
            .await
    }
    async fn organization_by_id(&self, id: &str) -> Result<Option<Organization>, StoreError> {
        self.measure("organization_by_id", self.0.organization_by_id(id))
            .await
    }
    async fn admin_by_email(&self, email: &str) -> Result<Option<Admin>, StoreError> {
        self.measure("admin_by_email", self.0.admin_by_email(email))
            .await
    }
    async fn admin_by_id(&self, id: &str) -> Result<Option<Admin>, StoreError> {
        self.measure("admin_by_id", self.0.admin_by_id(id)).await
    }
    async fn rename_organization(
        &self,
        id: &str,
        new_name: &OrgName,
        at: DateTime<Utc>,
    ) -> Result<Organization, StoreError> {
        self.measure(
            "rename_organization",
            self.0.rename_organization(id, new_name, at),
        )
        .await
    }
    async fn delete_organization(&self, id: &str) -> Result<bool, StoreError> {
        self.measure("delete_organization", self.0.delete_organization(id))
            .await
    }
    async fn reconcile(&self, grace: Duration) -> Result<ReconcileReport, StoreError> {
        self.measure("reconcile", self.0.reconcile(grace)).await
    }
    async fn consistency_problems(&self) -> Result<Vec<String>, StoreError> {
        self.measure("consistency_problems", self.0.consistency_problems())
            .await
    }
    async fn count_organizations(&self) -> Result<u64, StoreError> {
        self.measure("count_organizations", self.0.count_organizations())
            .await
    }
    async fn insert_tenant_documents(
        &self,
        org: &Organization,
        documents: Vec<serde_json::Value>,
    ) -> Result<u64, StoreError> {
        self.measure(
            "insert_tenant_documents",
            self.0.insert_tenant_documents(org, documents),
        )
        .await
    }
    async fn count_tenant_documents(&self, org: &Organization) -> Result<u64, StoreError> {
        self.measure("count_tenant_documents", self.0.count_tenant_documents(org))
            .await
    }
    async fn register_login_attempt(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window: Duration,
        limit: u32,
    ) -> Result<AttemptWindow, StoreError> {
        self.measure(
            "register_login_attempt",
            self.0.register_login_attempt(key, now, window, limit),
        )
        .await
    }
    async fn clear_login_attempts(&self, key: &str) -> Result<(), StoreError> {
        self.measure("clear_login_attempts", self.0.clear_login_attempts(key))
            .await
    }
    async fn change_password(
        &self,
        admin_id: &str,
        password_hash: &str,
    ) -> Result<i64, StoreError> {
        self.measure(
            "change_password",
            self.0.change_password(admin_id, password_hash),
        )
        .await
    }
    async fn revoke_sessions(&self, admin_id: &str) -> Result<i64, StoreError> {
        self.measure("revoke_sessions", self.0.revoke_sessions(admin_id))
            .await
    }
    async fn insert_refresh_token(&self, token: &RefreshToken) -> Result<(), StoreError> {
        self.measure("insert_refresh_token", self.0.insert_refresh_token(token))
            .await
    }
    async fn spend_refresh_token(
        &self,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<RefreshSpend, StoreError> {
        self.measure("spend_refresh_token", self.0.spend_refresh_token(hash, now))
            .await
    }
    async fn revoke_refresh_family(&self, family_id: &str) -> Result<(), StoreError> {
        self.measure(
            "revoke_refresh_family",
            self.0.revoke_refresh_family(family_id),
        )
        .await
    }
}
