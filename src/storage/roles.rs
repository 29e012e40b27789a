//! The store's operations, one trait per concern.
//!
//! Each trait is declared once, through [`role!`], which also implements it for
//! [`MeteredStore`]: timing is written once (in [`MeteredStore::measure`]), not once per
//! operation. A new concern (members, documents, audit, API keys) is one more `role!` block here
//! and one module per adapter that implements it.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::metered::MeteredStore;
use super::{
    AttemptWindow, IdempotencyClaim, LayoutChange, ReconcileReport, RefreshSpend, RefreshToken,
    StoreError,
};
use crate::domain::{Admin, NewOrganization, OrgName, Organization, TenantLayout};

/// Declares a role trait whose operations all return `Result<_, StoreError>`, and implements
/// it for [`MeteredStore`] by timing the wrapped store's operation under its own name.
macro_rules! role {
    (
        $(#[$doc:meta])*
        pub trait $role:ident {
            $(
                $(#[$op_doc:meta])*
                async fn $op:ident(&self $(, $arg:ident: $ty:ty)* $(,)?) -> Result<$ok:ty, StoreError>;
            )*
        }
    ) => {
        $(#[$doc])*
        #[async_trait]
        pub trait $role: Send + Sync {
            $(
                $(#[$op_doc])*
                async fn $op(&self $(, $arg: $ty)*) -> Result<$ok, StoreError>;
            )*
        }

        #[async_trait]
        impl $role for MeteredStore {
            $(
                async fn $op(&self $(, $arg: $ty)*) -> Result<$ok, StoreError> {
                    self.measure(stringify!($op), self.0.$op($($arg),*)).await
                }
            )*
        }
    };
}

role! {
    /// Schema, health and repair.
    pub trait Maintenance {
        /// Creates tables/indexes if missing and brings older data to the current layout.
        /// Idempotent; run at every start-up.
        async fn migrate(&self) -> Result<(), StoreError>;

        /// A real read of the data (and on the embedded store a write lock taken and released),
        /// within the store timeout: what `/health` reports.
        async fn ping(&self) -> Result<(), StoreError>;

        /// Finishes or undoes operations interrupted more than `grace` ago, and removes expired
        /// throttle records. Safe to run at any time, from any number of instances.
        async fn reconcile(&self, grace: Duration) -> Result<ReconcileReport, StoreError>;

        /// Lists every inconsistency between organizations, admins, tenant data and
        /// reservations (empty when consistent). Used by tests and `org-service migrate`.
        async fn consistency_problems(&self) -> Result<Vec<String>, StoreError>;

        /// Moves every tenant's documents to the `to` layout (`org-service migrate
        /// --tenant-layout`): nothing lost or duplicated, resumable after a crash at any point,
        /// [`StoreError::Refused`] while an instance serves.
        async fn change_tenant_layout(&self, to: TenantLayout) -> Result<LayoutChange, StoreError>;
    }
}

role! {
    /// Organizations and their admins.
    pub trait Organizations {
        /// Creates the organization, its admin and its tenant collection, all or nothing.
        /// A taken slug or email is [`StoreError::Conflict`].
        async fn create_organization(&self, new: &NewOrganization) -> Result<Organization, StoreError>;

        /// The (fully created) organization with this slug.
        async fn organization_by_slug(&self, slug: &str) -> Result<Option<Organization>, StoreError>;

        /// The (fully created) organization with this id.
        async fn organization_by_id(&self, id: &str) -> Result<Option<Organization>, StoreError>;

        /// The admin with this normalized email, if its organization is fully created.
        async fn admin_by_email(&self, email: &str) -> Result<Option<Admin>, StoreError>;

        /// The admin with this id, if its organization is fully created.
        async fn admin_by_id(&self, id: &str) -> Result<Option<Admin>, StoreError>;

        /// Renames the organization. Its tenant data keeps its place or moves with the slug
        /// (a rename of the collection, never a copy), depending on the layout. A taken slug is
        /// a conflict; a vanished organization [`StoreError::Gone`].
        async fn rename_organization(&self, id: &str, new_name: &OrgName, at: DateTime<Utc>) -> Result<Organization, StoreError>;

        /// Removes the organization, its admin and its tenant data. `Ok(false)` if absent.
        async fn delete_organization(&self, id: &str) -> Result<bool, StoreError>;

        /// Number of fully created organizations.
        async fn count_organizations(&self) -> Result<u64, StoreError>;
    }
}

role! {
    /// Passwords, token versions and refresh-token chains.
    pub trait Sessions {
        /// Replaces the admin's password hash, bumps their token version (every access token
        /// dies) and deletes their refresh tokens. Returns the new version; [`StoreError::Gone`]
        /// if the admin is gone.
        async fn change_password(&self, admin_id: &str, password_hash: &str) -> Result<i64, StoreError>;

        /// Replaces the admin's password hash with the same password hashed at another cost, if
        /// it is still `old_hash` (a concurrent password change wins). Sessions are untouched:
        /// the password did not change. `Ok(false)` when nothing was replaced.
        async fn upgrade_password_hash(&self, admin_id: &str, old_hash: &str, new_hash: &str) -> Result<bool, StoreError>;

        /// Bumps the admin's token version and deletes their refresh tokens (log out everywhere).
        async fn revoke_sessions(&self, admin_id: &str) -> Result<i64, StoreError>;

        /// Stores a new refresh token (by hash). [`StoreError::Revoked`] if its chain was
        /// revoked meanwhile (or the token exists already).
        async fn insert_refresh_token(&self, token: &RefreshToken) -> Result<(), StoreError>;

        /// Marks the token with this hash spent, atomically: of concurrent spends of one token,
        /// exactly one is `Fresh`.
        async fn spend_refresh_token(&self, hash: &str, now: DateTime<Utc>) -> Result<RefreshSpend, StoreError>;

        /// Revokes a rotation chain: its tokens stop working and no new token can join it.
        async fn revoke_refresh_family(&self, family_id: &str) -> Result<(), StoreError>;
    }
}

role! {
    /// The per-account login throttle.
    pub trait Throttle {
        /// Counts one login attempt for `key` in the current window (a window is `window` long
        /// from its first attempt; an expired one restarts). At most `limit` attempts are
        /// counted per window, atomically even under concurrency and across instances; an
        /// attempt beyond that is not counted and reported as `limit + 1`.
        async fn register_login_attempt(&self, key: &str, now: DateTime<Utc>, window: Duration, limit: u32) -> Result<AttemptWindow, StoreError>;

        /// Forgets the attempts counted for `key` (after a successful login).
        async fn clear_login_attempts(&self, key: &str) -> Result<(), StoreError>;
    }
}

role! {
    /// The organization's own documents.
    pub trait TenantData {
        /// Adds JSON documents to the organization's tenant data (demo data, tests, benchmarks).
        async fn insert_tenant_documents(&self, org: &Organization, documents: Vec<serde_json::Value>) -> Result<u64, StoreError>;

        /// Number of the organization's documents.
        async fn count_tenant_documents(&self, org: &Organization) -> Result<u64, StoreError>;
    }
}

role! {
    /// Remembered responses for `Idempotency-Key`.
    pub trait Idempotency {
        /// Claims the idempotency `scope` for a request with this `fingerprint`, atomically
        /// across instances. A running claim older than `running_ttl` (its process died) and a
        /// finished one older than [`super::IDEMPOTENCY_KEEP`] count as absent.
        async fn begin_idempotent(&self, scope: &str, fingerprint: &str, running_ttl: Duration) -> Result<IdempotencyClaim, StoreError>;

        /// Stores the sealed response of the request that holds `scope`.
        async fn finish_idempotent(&self, scope: &str, sealed: &[u8]) -> Result<(), StoreError>;

        /// Gives up a running claim (the response is not to be replayed: a 5xx or a 429).
        async fn abandon_idempotent(&self, scope: &str) -> Result<(), StoreError>;
    }
}
