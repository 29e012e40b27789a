//! Storage: one trait that speaks the domain, two adapters.
//!
//! Handlers talk to [`Store`] only; they never see a driver type, a table or a collection
//! handle. Each adapter translates its backend's errors into [`StoreError`] itself: a unique
//! violation becomes [`StoreError::Conflict`], an absent record `Ok(None)`, everything else
//! [`StoreError::Unavailable`] (the store cannot be reached: 503) or [`StoreError::Backend`].
//!
//! - [`embedded::EmbeddedStore`]: a single SQLite file; every operation is one transaction.
//! - [`mongo::MongoStore`]: MongoDB (or FerretDB) without transactions: ordered idempotent
//!   steps, claimed by inserting reservation documents, finished or undone by a reconciler.
//!
//! See ARCHITECTURE.md for the data model on each store and the consistency argument.

pub mod embedded;
pub mod metered;
pub mod mongo;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::config::{Config, StoreConfig};
use crate::domain::{Admin, NewOrganization, OrgName, Organization};
use crate::failpoint::Failpoints;

/// Longest login throttle window (`LOGIN_WINDOW_SECONDS` is capped at this); throttle records
/// older than this are expired by the reconciler.
pub const MAX_LOGIN_WINDOW_SECONDS: i64 = 86_400;

/// Which unique value a write collided with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// Another organization has the same slug.
    Name,
    /// Another admin has the same email.
    Email,
}

/// What can go wrong in a store, in domain terms.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique value is already taken.
    #[error("{0:?} already taken")]
    Conflict(Taken),
    /// The record to change no longer exists.
    #[error("not found")]
    NotFound,
    /// Another change to the same organization is in progress (MongoDB's per-organization
    /// operation lock); the caller may retry.
    #[error("another change to this organization is in progress")]
    Busy,
    /// The store could not be reached in time: callers answer 503.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Any other failure, with context for the log.
    #[error("store error: {0}")]
    Backend(String),
}

/// Outcome of one login attempt against the per-account throttle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptWindow {
    /// Attempts counted in the current window, this one included (`limit + 1`: refused).
    pub attempts: u32,
    /// When the current window started.
    pub window_start: DateTime<Utc>,
}

/// A refresh token as stored: only its SHA-256 hash, never the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// Hex SHA-256 of the token string.
    pub hash: String,
    /// The admin it refreshes.
    pub admin_id: String,
    /// The rotation chain it belongs to (one per login).
    pub family_id: String,
    /// The admin's token version when issued: a logout or password change since then voids it.
    pub token_version: i64,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// What spending a refresh token found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshSpend {
    /// Valid and now spent: the caller issues the next token of the family.
    Fresh(RefreshToken),
    /// Spent before, and its successor has been issued since: a replay after the winning
    /// use; the caller revokes the whole family.
    Reused(RefreshToken),
    /// Spent by a concurrent use whose successor is not issued yet: this use lost the race.
    /// The caller answers 401 and revokes nothing (the winner's chain goes on).
    Contended,
    /// Unknown, revoked or expired.
    Invalid,
}

/// How long a request is remembered under its `Idempotency-Key`.
pub const IDEMPOTENCY_KEEP: Duration = Duration::from_secs(24 * 3600);

/// What claiming an idempotency key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// The key is ours now: run the request, then finish or abandon the claim.
    Started,
    /// Another request with this key is still running.
    Running {
        /// Fingerprint of that request.
        fingerprint: String,
    },
    /// A request with this key finished: its response (sealed) is replayed.
    Finished {
        /// Fingerprint of that request.
        fingerprint: String,
        /// The response, encrypted by [`crate::idempotency`].
        sealed: Vec<u8>,
    },
}

/// What a reconciler pass repaired.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Interrupted operations finished or undone, one line each.
    pub repaired: Vec<String>,
}

/// The service's persistence, in domain terms. Implementations must be safe to share between
/// tasks and, for MongoDB, between service instances on one database.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Short name for logs and metrics ("embedded" or "mongodb").
    fn kind(&self) -> &'static str;

    /// Creates tables/indexes if missing. Idempotent; run at every start-up.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// A real read of the data (and on the embedded store a write lock taken and released),
    /// within the store timeout: what `/health` reports.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Flushes and closes connections at shutdown (best effort).
    async fn close(&self);

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

    /// Renames the organization, moving its tenant collection when the slug changes (a rename
    /// of the collection, never a copy). A taken slug is a conflict; a vanished org `NotFound`.
    async fn rename_organization(
        &self,
        id: &str,
        new_name: &OrgName,
        at: DateTime<Utc>,
    ) -> Result<Organization, StoreError>;

    /// Removes the organization, its admin and its tenant collection. `Ok(false)` if absent.
    async fn delete_organization(&self, id: &str) -> Result<bool, StoreError>;

    /// Finishes or undoes operations interrupted more than `grace` ago, and removes expired
    /// throttle records. Safe to run at any time, from any number of instances.
    async fn reconcile(&self, grace: Duration) -> Result<ReconcileReport, StoreError>;

    /// Lists every inconsistency between organizations, admins, tenant collections and
    /// reservations (empty when consistent). Used by tests and `org-service migrate`.
    async fn consistency_problems(&self) -> Result<Vec<String>, StoreError>;

    /// Number of fully created organizations.
    async fn count_organizations(&self) -> Result<u64, StoreError>;

    /// Adds JSON documents to the organization's tenant collection (demo data, tests, benchmarks).
    async fn insert_tenant_documents(
        &self,
        org: &Organization,
        documents: Vec<serde_json::Value>,
    ) -> Result<u64, StoreError>;

    /// Number of documents in the organization's tenant collection.
    async fn count_tenant_documents(&self, org: &Organization) -> Result<u64, StoreError>;

    /// Counts one login attempt for `key` in the current window (a window is `window` long from
    /// its first attempt; an expired one restarts). At most `limit` attempts are counted per
    /// window, atomically even under concurrency and across instances; an attempt beyond that
    /// is not counted and reported as `limit + 1`.
    async fn register_login_attempt(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window: Duration,
        limit: u32,
    ) -> Result<AttemptWindow, StoreError>;

    /// Forgets the attempts counted for `key` (after a successful login).
    async fn clear_login_attempts(&self, key: &str) -> Result<(), StoreError>;

    /// Replaces the admin's password hash, bumps their token version (every access token dies)
    /// and deletes their refresh tokens. Returns the new version; `NotFound` if the admin is gone.
    async fn change_password(&self, admin_id: &str, password_hash: &str)
        -> Result<i64, StoreError>;

    /// Replaces the admin's password hash with the same password hashed at another cost, if it
    /// is still `old_hash` (a concurrent password change wins). Sessions are untouched: the
    /// password did not change. `Ok(false)` when nothing was replaced.
    async fn upgrade_password_hash(
        &self,
        admin_id: &str,
        old_hash: &str,
        new_hash: &str,
    ) -> Result<bool, StoreError>;

    /// Bumps the admin's token version and deletes their refresh tokens (log out everywhere).
    async fn revoke_sessions(&self, admin_id: &str) -> Result<i64, StoreError>;

    /// Stores a new refresh token (by hash).
    async fn insert_refresh_token(&self, token: &RefreshToken) -> Result<(), StoreError>;

    /// Marks the token with this hash spent, atomically: of concurrent spends of one token,
    /// exactly one is `Fresh`.
    async fn spend_refresh_token(
        &self,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<RefreshSpend, StoreError>;

    /// Revokes a rotation chain: its tokens stop working and no new token can join it.
    async fn revoke_refresh_family(&self, family_id: &str) -> Result<(), StoreError>;

    /// Claims the idempotency `scope` for a request with this `fingerprint`, atomically across
    /// instances. A running claim older than `running_ttl` (its process died) and a finished
    /// one older than [`IDEMPOTENCY_KEEP`] count as absent.
    async fn begin_idempotent(
        &self,
        scope: &str,
        fingerprint: &str,
        running_ttl: Duration,
    ) -> Result<IdempotencyClaim, StoreError>;

    /// Stores the sealed response of the request that holds `scope`.
    async fn finish_idempotent(&self, scope: &str, sealed: &[u8]) -> Result<(), StoreError>;

    /// Gives up a running claim (the response is not to be replayed: a 5xx or a 429).
    async fn abandon_idempotent(&self, scope: &str) -> Result<(), StoreError>;
}

/// Connects the store chosen by the configuration and runs its migrations.
pub async fn connect(config: &Config, failpoints: Failpoints) -> anyhow::Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = match &config.store {
        StoreConfig::Embedded { path } => {
            Arc::new(embedded::EmbeddedStore::open(path, config.store_timeout, failpoints).await?)
        }
        StoreConfig::Mongo { url, db_name } => Arc::new(
            mongo::MongoStore::connect(
                std::str::from_utf8(url.expose())?,
                db_name,
                config.store_timeout,
                failpoints,
                config.clock_skew,
            )
            .await?,
        ),
    };
    if let Err(e) = store.migrate().await {
        // An unreachable MongoDB at start-up is not fatal: the service starts, reports
        // unhealthy, and the periodic task migrates once the server answers.
        if !matches!(e, StoreError::Unavailable(_)) {
            return Err(e.into());
        }
        tracing::error!(error = %e, "store unreachable at start-up; will retry");
    }
    Ok(Arc::new(metered::MeteredStore(store)))
}
